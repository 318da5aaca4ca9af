"""The assistant's world: the shared Helsinki map and places (loaded once per process) plus a fresh simulated
vehicle. `World.create(seed)` is deterministic: seed 0 is the default car at Senaatintori, other seeds vary
the start place, battery, cabin temperature and fan."""
import math
import random
from dataclasses import dataclass

from qwenkit.apps.car import tools
from qwenkit.apps.car.map import RoadMap, load_road_map
from qwenkit.apps.car.places import PlaceIndex, load_places
from qwenkit.apps.car.vehicle import FULL_RANGE_KM, Vehicle

DEFAULT_START = "Senaatintori"
START_PLACES = ("Senaatintori", "Rautatientori", "Hotel Kämp", "Stockmann", "Ateneum", "Palace Hotel",
                "Hotel Haven", "Helsingin tuomiokirkko")


@dataclass(slots=True)
class World:
    road_map: RoadMap
    places: PlaceIndex
    vehicle: Vehicle
    seed: int = 0

    @classmethod
    def create(cls, seed: int = 0) -> "World":
        road_map, places = load_road_map(), load_places()
        return cls(road_map, places, new_vehicle(places, seed), seed)

    def reset(self) -> None:
        self.vehicle = new_vehicle(self.places, self.seed)

    def execute(self, name: str, arguments: dict | str | None = None) -> dict:
        return tools.execute(self, name, arguments)

    def drive(self, meters: float = math.inf) -> dict:
        """Move the car up to `meters` along the active route (whole edges), using battery; arrival ends it."""
        vehicle, nav = self.vehicle, self.vehicle.navigation
        if nav is None:
            return {"error": "no active navigation"}
        route, driven = nav.route, 0.0
        while nav.progress < len(route.lengths) and driven + route.lengths[nav.progress] <= meters:
            driven += route.lengths[nav.progress]
            nav.progress += 1
        vehicle.node = route.nodes[nav.progress]
        vehicle.battery_pct = max(0.0, vehicle.battery_pct - driven / 1000 / FULL_RANGE_KM * 100)
        if nav.progress == len(route.lengths):
            vehicle.location, vehicle.navigation = nav.destination, None
            return {"driven_m": round(driven), "arrived": nav.destination}
        if nav.progress and route.streets[nav.progress - 1]:
            vehicle.location = route.streets[nav.progress - 1]
        return {"driven_m": round(driven), "remaining_km": round(route.remaining(nav.progress)[0] / 1000, 1)}

    def snapshot(self) -> dict:
        """The whole vehicle state as plain JSON-able data."""
        v = self.vehicle
        navigation = None
        if v.navigation:
            meters, seconds = v.navigation.route.remaining(v.navigation.progress)
            navigation = {"destination": v.navigation.destination, "remaining_m": round(meters, 1),
                          "eta_s": round(seconds, 1), "route_nodes": len(v.navigation.route.nodes)}
        return {"seed": self.seed, "node": v.node, "location": v.location, "battery_pct": round(v.battery_pct, 2),
                "range_km": round(v.range_km, 1), "cabin_c": dict(v.cabin_c), "fan": v.fan,
                "seat_heating": dict(v.seat_heating), "windows_open": dict(v.windows_open), "media": v.media,
                "media_playing": v.media_playing, "call": v.call, "navigation": navigation}


def new_vehicle(places: PlaceIndex, seed: int) -> Vehicle:
    if seed == 0:
        return Vehicle(places.named(DEFAULT_START).node, DEFAULT_START)
    rng = random.Random(seed)
    start = rng.choice(START_PLACES)
    vehicle = Vehicle(places.named(start).node, start, battery_pct=float(rng.randint(12, 98)), fan=rng.randint(0, 4))
    vehicle.cabin_c = dict.fromkeys(vehicle.cabin_c, float(rng.choice((18, 19, 20, 21, 22, 23, 24))))
    return vehicle
