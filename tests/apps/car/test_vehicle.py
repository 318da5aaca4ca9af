"""The simulated car and its World: defaults, deterministic seeds, reset, driving along a route."""
import json

import pytest

from qwenkit.apps.car.vehicle import CONTACTS, FULL_RANGE_KM, Vehicle
from qwenkit.apps.car.world import START_PLACES, World


def test_default_vehicle():
    world = World.create()
    v = world.vehicle
    assert v.location == "Senaatintori" and v.node == world.places.named("Senaatintori").node
    assert v.battery_pct == 80 and v.range_km == pytest.approx(0.8 * FULL_RANGE_KM)
    assert v.cabin_c == {"driver": 21.0, "passenger": 21.0, "rear": 21.0} and v.fan == 2
    assert set(v.seat_heating) == {"driver", "passenger", "rear_left", "rear_right"}
    assert set(v.windows_open) == {"driver", "passenger", "rear_left", "rear_right"}
    assert not any(v.windows_open.values()) and v.media is None and v.call is None and v.navigation is None
    assert {"Mom", "Anna", "Mikko", "Office", "Dr. Virtanen"} == set(CONTACTS)


def test_vehicles_do_not_share_state():
    a, b = Vehicle(1, "x"), Vehicle(2, "y")
    a.cabin_c["driver"], a.windows_open["driver"] = 25.0, True
    assert b.cabin_c["driver"] == 21.0 and not b.windows_open["driver"]


def test_seeds_are_deterministic_and_varied():
    assert World.create(7).snapshot() == World.create(7).snapshot()
    snapshots = [World.create(seed).snapshot() for seed in range(1, 9)]
    assert len({(s["location"], s["battery_pct"], s["cabin_c"]["driver"]) for s in snapshots}) > 4
    assert {s["location"] for s in snapshots} <= set(START_PLACES)
    assert World.create(0).snapshot() == World.create().snapshot()


def test_reset_restores_the_seeded_state():
    world = World.create(3)
    before = world.snapshot()
    world.execute("set_temperature", {"celsius": 27})
    world.execute("navigate_to", {"destination": "Ateneum"})
    world.drive(200)
    assert world.snapshot() != before
    world.reset()
    assert world.snapshot() == before


def test_snapshot_is_json():
    world = World.create()
    world.execute("navigate_to", {"destination": "Stockmann"})
    snapshot = json.loads(json.dumps(world.snapshot()))
    assert snapshot["navigation"]["destination"] == "Stockmann"
    assert snapshot["navigation"]["remaining_m"] == pytest.approx(world.vehicle.navigation.route.distance_m, abs=0.1)


def test_drive_follows_the_route_and_arrives():
    world = World.create()
    assert world.drive(100) == {"error": "no active navigation"}
    world.execute("navigate_to", {"destination": "Stockmann"})
    route = world.vehicle.navigation.route
    step = world.drive(300)
    assert 0 < step["driven_m"] <= 300 and world.vehicle.node in route.nodes[1:-1]
    assert world.vehicle.location in route.streets
    info = world.execute("route_info", {})
    assert info["remaining_km"] == step["remaining_km"]
    assert info["remaining_km"] < round(route.distance_m / 1000, 1) + 0.05
    end = world.drive()
    assert end["arrived"] == "Stockmann" and world.vehicle.location == "Stockmann"
    assert step["driven_m"] + end["driven_m"] == pytest.approx(route.distance_m, abs=1)
    assert world.vehicle.node == route.nodes[-1] and world.vehicle.navigation is None
    assert world.vehicle.battery_pct == pytest.approx(80 - route.distance_m / 1000 / FULL_RANGE_KM * 100)
    assert world.execute("navigate_to", {"destination": "Stockmann"}) == {"error": "already at Stockmann"}
