"""Route planning on the road graph: fastest (or shortest) paths, road distances, nearest places by road,
places along a route."""
from dataclasses import dataclass

import networkx as nx
import numpy as np

from qwenkit.apps.car.map import RoadMap, haversine_m
from qwenkit.apps.car.places import Place


@dataclass(slots=True)
class Route:
    """A path of graph nodes with per-edge street name, length (m) and travel time (s)."""
    nodes: list[int]
    streets: list[str]
    lengths: list[float]
    times: list[float]

    @property
    def distance_m(self) -> float:
        return sum(self.lengths)

    @property
    def duration_s(self) -> float:
        return sum(self.times)

    def remaining(self, index: int) -> tuple[float, float]:
        """Distance (m) and time (s) left from route node `index` to the end."""
        return sum(self.lengths[index:]), sum(self.times[index:])

    def via(self, limit: int = 3) -> list[str]:
        return [s for s in dict.fromkeys(self.streets) if s][:limit]


def plan_route(road_map: RoadMap, origin: int, target: int, weight: str = "travel_time") -> Route | None:
    """The best path by `weight` ("travel_time" or "length"), respecting one-way streets; None if unreachable."""
    try:
        nodes = nx.shortest_path(road_map.graph, origin, target, weight=weight)
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return None
    route = Route(nodes, [], [], [])
    for u, v in zip(nodes, nodes[1:]):
        edge = min(road_map.graph[u][v].values(), key=lambda data: data[weight])
        route.streets.append(edge["street"])
        route.lengths.append(edge["length"])
        route.times.append(edge["travel_time"])
    return route


def road_distances(road_map: RoadMap, origin: int, cutoff: float | None = None) -> dict[int, float]:
    """Driving distance (m) from origin to every node reachable within cutoff."""
    return nx.single_source_dijkstra_path_length(road_map.graph, origin, cutoff=cutoff, weight="length")


def nearest_places(road_map: RoadMap, places: list[Place], origin: int, limit: int = 3,
                   max_distance_m: float | None = None) -> list[tuple[Place, float]]:
    """The closest places by road (one per name), nearest first."""
    distances = road_distances(road_map, origin, max_distance_m)
    reachable = sorted((distances[p.node], p.name, i) for i, p in enumerate(places) if p.node in distances)
    found: dict[str, tuple[Place, float]] = {}
    for dist, name, i in reachable:
        found.setdefault(name, (places[i], dist))
        if len(found) == limit:
            break
    return list(found.values())


def places_along_route(road_map: RoadMap, route: Route, places: list[Place], within_m: float = 100.0) -> list[Place]:
    """Places within `within_m` of any route node, in the order the route passes them."""
    if not places or not route.nodes:
        return []
    lon = np.array([road_map.point(n)[0] for n in route.nodes])
    lat = np.array([road_map.point(n)[1] for n in route.nodes])
    place_lon = np.array([p.lon for p in places])[:, None]
    place_lat = np.array([p.lat for p in places])[:, None]
    dist = haversine_m(place_lon, place_lat, lon[None, :], lat[None, :])
    close = np.flatnonzero(dist.min(axis=1) <= within_m)
    order = sorted(close, key=lambda i: (dist[i].argmin(), places[i].name))
    return list({places[i].name: places[i] for i in reversed(order)}.values())[::-1]
