"""Places of the Helsinki extract, indexed by name (fuzzy, diacritics folded) and by category, each snapped
to its nearest road node. Streets are places too (category "street"), so "drive to Mikonkatu" works."""
import re
import unicodedata
import warnings
from collections import defaultdict
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from qwenkit.apps.car.map import RoadMap, load_road_map, osm_data

CATEGORIES = {
    "restaurant": ("amenity", "restaurant"), "cafe": ("amenity", "cafe"), "fast_food": ("amenity", "fast_food"),
    "pub": ("amenity", "pub"), "bar": ("amenity", "bar"), "parking": ("amenity", "parking"),
    "charging_station": ("amenity", "charging_station"), "pharmacy": ("amenity", "pharmacy"),
    "atm": ("amenity", "atm"), "bank": ("amenity", "bank"), "toilets": ("amenity", "toilets"),
    "library": ("amenity", "library"), "theatre": ("amenity", "theatre"), "cinema": ("amenity", "cinema"),
    "taxi": ("amenity", "taxi"), "post_office": ("amenity", "post_office"),
    "place_of_worship": ("amenity", "place_of_worship"),
    "hotel": ("tourism", "hotel"), "hostel": ("tourism", "hostel"), "museum": ("tourism", "museum"),
    "gallery": ("tourism", "gallery"), "attraction": ("tourism", "attraction"),
    "supermarket": ("shop", "supermarket"), "convenience": ("shop", "convenience"),
    "department_store": ("shop", "department_store"),
}
CATEGORY_ALIASES = {
    "charger": "charging_station", "ev charger": "charging_station", "charging": "charging_station",
    "charging point": "charging_station", "gas station": "charging_station", "fuel": "charging_station",
    "petrol station": "charging_station", "coffee": "cafe", "coffee shop": "cafe", "café": "cafe",
    "fast food": "fast_food", "burger": "fast_food", "food": "restaurant", "parking lot": "parking",
    "car park": "parking", "parking garage": "parking", "garage": "parking", "drugstore": "pharmacy",
    "chemist": "pharmacy", "grocery": "supermarket", "grocery store": "supermarket",
    "cash machine": "atm", "cash": "atm", "toilet": "toilets", "restroom": "toilets", "wc": "toilets",
    "art gallery": "gallery", "sight": "attraction", "sights": "attraction", "kiosk": "convenience",
    "church": "place_of_worship", "cathedral": "place_of_worship",
}
PLACE_ALIASES = {
    "helsinki cathedral": "Helsingin tuomiokirkko", "cathedral": "Helsingin tuomiokirkko",
    "tuomiokirkko": "Helsingin tuomiokirkko", "senate square": "Senaatintori",
    "railway square": "Rautatientori", "railway station": "Rautatientori", "central station": "Rautatientori",
    "ateneum art museum": "Ateneum",
}
GENERIC_WORDS = {"hotel", "hotelli", "restaurant", "ravintola", "cafe", "kahvila", "bar", "pub", "the",
                 "helsinki", "helsingin", "museum", "museo", "store", "shop"}
LANDMARKS = {"hotel", "museum", "attraction", "department_store", "theatre", "library", "place_of_worship"}
MATCH_CUTOFF = 0.72


@dataclass(slots=True)
class Place:
    name: str
    categories: tuple[str, ...]
    lon: float
    lat: float
    node: int

    @property
    def category(self) -> str:
        return self.categories[0] if self.categories else "place"


def fold(text: str) -> str:
    """Lowercase, diacritics removed, punctuation to spaces: "Hotel Kämp" -> "hotel kamp"."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().replace("&", " and ")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def match_score(query: str, name: str) -> float:
    """How well a folded query names a folded place name, 0..1."""
    if query == name:
        return 1.0
    q, n = query.split(), name.split()
    core = [t for t in n if t not in GENERIC_WORDS]
    if core and [t for t in q if t not in GENERIC_WORDS] == core:
        return 0.95
    if set(q) <= set(n):
        return 0.85 + 0.1 * len(query) / len(name)
    if set(n) <= set(q):
        return 0.8 + 0.1 * len(name) / len(query)
    fuzzy = 0.0
    for target in (name, " ".join(core)):
        matcher = SequenceMatcher(None, query, target)
        if matcher.real_quick_ratio() > 0.45 and matcher.quick_ratio() > 0.45:
            fuzzy = max(fuzzy, matcher.ratio())
    return 0.9 * fuzzy


class PlaceIndex:
    def __init__(self, places: list[Place]):
        self.places = places
        self.by_name: dict[str, list[Place]] = defaultdict(list)
        self.by_category: dict[str, list[Place]] = defaultdict(list)
        for place in places:
            self.by_name[fold(place.name)].append(place)
            for category in place.categories:
                self.by_category[category].append(place)

    def key(self, query: str) -> str:
        key = fold(query)
        return fold(PLACE_ALIASES.get(key, key))

    def ranked(self, query: str) -> list[tuple[float, str]]:
        key = self.key(query)
        scored = [(match_score(key, name), name) for name in self.by_name]
        return sorted(scored, key=lambda s: (-s[0], not self.landmark(s[1]), len(s[1]), s[1]))

    def landmark(self, name: str) -> bool:
        return any(LANDMARKS.intersection(p.categories) for p in self.by_name[name])

    def lookup(self, query: str) -> list[Place]:
        """Every place carrying the best-matching name (chains have several), or [] when nothing is close."""
        if self.key(query) in self.by_name:
            return list(self.by_name[self.key(query)])
        ranked = self.ranked(query)
        if not ranked or ranked[0][0] < MATCH_CUTOFF:
            return []
        return list(self.by_name[ranked[0][1]])

    def suggest(self, query: str, n: int = 3) -> list[str]:
        return [self.by_name[name][0].name for score, name in self.ranked(query)[:n] if score >= 0.4]

    def category(self, query: str) -> str | None:
        """A category name from what a driver or model says: "coffee shops" -> "cafe"."""
        key = fold(query).replace("_", " ")
        singular = key[:-3] + "y" if key.endswith("ies") else key.removesuffix("s")
        for candidate in (key, singular, key.removesuffix("es")):
            snake = candidate.replace(" ", "_")
            if snake in CATEGORIES:
                return snake
            if candidate in CATEGORY_ALIASES:
                return CATEGORY_ALIASES[candidate]
        return None

    def named(self, name: str) -> Place | None:
        found = self.by_name.get(fold(name))
        return found[0] if found else None


def poi_categories(row) -> tuple[str, ...]:
    return tuple(c for c, (key, value) in CATEGORIES.items() if row.get(key) == value)


def poi_places(road_map: RoadMap) -> list[Place]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pois = osm_data().get_pois()
    places, unnamed = [], defaultdict(int)
    for row in pois.to_dict("records"):
        categories, name = poi_categories(row), row.get("name")
        if not categories and not isinstance(name, str):
            continue
        point = row["geometry"].representative_point()
        node, _ = road_map.nearest_node(point.x, point.y)
        if not isinstance(name, str):
            streets = road_map.streets_at(node)
            label = categories[0].replace("_", " ").capitalize()
            name = f"{label} on {streets[0]}" if streets else label
            unnamed[name] += 1
            name += f" ({unnamed[name]})" if unnamed[name] > 1 else ""
        places.append(Place(name, categories, point.x, point.y, node))
    return places


def street_places(road_map: RoadMap) -> list[Place]:
    """One place per named street, at its node nearest the street's middle."""
    nodes: dict[str, set[int]] = defaultdict(set)
    for u, v, data in road_map.graph.edges(data=True):
        if data["street"]:
            nodes[data["street"]].update((u, v))
    places = []
    for street, members in sorted(nodes.items()):
        points = {n: road_map.point(n) for n in members}
        lon = sum(p[0] for p in points.values()) / len(points)
        lat = sum(p[1] for p in points.values()) / len(points)
        node = min(points, key=lambda n: (points[n][0] - lon) ** 2 + ((points[n][1] - lat) * 2) ** 2)
        places.append(Place(street, ("street",), *points[node], node))
    return places


@lru_cache(maxsize=1)
def load_places() -> PlaceIndex:
    """Every named place plus unnamed ones of a known category, loaded once and cached."""
    road_map = load_road_map()
    return PlaceIndex(poi_places(road_map) + street_places(road_map))
