"""Every car tool's success and error paths through `execute`, which must never raise."""
import json

import pytest

from qwenkit.apps.car.tools import TOOL_SCHEMAS, execute
from qwenkit.apps.car.world import World

NAMES = ["navigate_to", "find_nearby", "route_info", "cancel_navigation", "set_temperature", "set_fan",
         "set_seat_heating", "open_window", "close_window", "play_media", "pause_media", "call_contact",
         "vehicle_status"]


@pytest.fixture
def world():
    return World.create()


def test_schemas():
    assert [s["function"]["name"] for s in TOOL_SCHEMAS] == NAMES
    for schema in TOOL_SCHEMAS:
        params = schema["function"]["parameters"]
        assert schema["type"] == "function" and params["type"] == "object"
        assert set(params["required"]) <= set(params["properties"])
        assert len(schema["function"]["description"]) <= 60
    args = {s["function"]["name"]: list(s["function"]["parameters"]["properties"]) for s in TOOL_SCHEMAS}
    assert args["navigate_to"] == ["destination"] and args["set_temperature"] == ["celsius", "zone"]
    assert args["find_nearby"] == ["category", "max_distance_m"] and args["set_seat_heating"] == ["seat", "level"]


def test_navigate_to(world):
    result = execute(world, "navigate_to", {"destination": "Atenium"})
    assert result == {"destination": "Ateneum", "distance_km": 1.0, "eta_min": 2,
                      "via": ["Unioninkatu", "Yliopistonkatu", "Mikonkatu"]}
    assert world.vehicle.navigation.destination == "Ateneum"
    assert execute(world, "navigate_to", '{"destination": "Hotel Kamp"}')["destination"] == "Hotel Kämp"


def test_navigate_to_a_category_goes_to_the_nearest(world):
    result = execute(world, "navigate_to", {"destination": "the nearest charging station"})
    assert result["destination"] == "Charging station on Fabianinkatu" and result["distance_km"] == 0.3


def test_navigate_to_errors(world):
    missing = execute(world, "navigate_to", {"destination": "Atenum Museo"})
    assert "Atenum Museo" in missing["error"] and "Ateneum" in missing["did_you_mean"]
    assert execute(world, "navigate_to", {"destination": "Senaatintori"}) == {"error": "already at Senaatintori"}
    assert "missing required argument 'destination'" in execute(world, "navigate_to", {})["error"]
    assert world.vehicle.navigation is None


def test_find_nearby(world):
    result = execute(world, "find_nearby", {"category": "charging stations"})
    assert result["category"] == "charging_station"
    assert [r["distance_m"] for r in result["results"]] == [297, 518, 1156]
    close = execute(world, "find_nearby", {"category": "cafe", "max_distance_m": "100"})
    assert 0 < len(close["results"]) <= 3 and all(r["distance_m"] <= 100 for r in close["results"])
    assert execute(world, "find_nearby", {"category": "pharmacy", "max_distance_m": 5}) == {
        "category": "pharmacy", "results": [], "note": "none within 5 m"}


def test_find_nearby_errors(world):
    unknown = execute(world, "find_nearby", {"category": "spa"})
    assert unknown["error"] == "unknown category 'spa'" and "charging_station" in unknown["valid"]
    assert "positive" in execute(world, "find_nearby", {"category": "cafe", "max_distance_m": -1})["error"]
    assert "must be a number" in execute(world, "find_nearby", {"category": "cafe", "max_distance_m": "far"})["error"]


def test_route_info_and_cancel(world):
    assert execute(world, "route_info", {}) == {"error": "no active navigation"}
    assert execute(world, "cancel_navigation", {}) == {"error": "no active navigation to cancel"}
    execute(world, "navigate_to", {"destination": "Hotel Kämp"})
    info = execute(world, "route_info", None)
    assert info == {"destination": "Hotel Kämp", "remaining_km": 0.3, "eta_min": 1,
                    "next": "In 140 m, turn right onto Pohjoisesplanadi"}
    assert execute(world, "cancel_navigation", "{}") == {"cancelled": "Hotel Kämp"}
    assert world.vehicle.navigation is None


def test_climate(world):
    assert execute(world, "set_temperature", {"celsius": 22, "zone": "driver"}) == {"zone": "driver", "celsius": 22.0}
    assert world.vehicle.cabin_c == {"driver": 22.0, "passenger": 21.0, "rear": 21.0}
    assert execute(world, "set_temperature", {"celsius": "19.5"}) == {"zone": "all", "celsius": 19.5}
    assert set(world.vehicle.cabin_c.values()) == {19.5}
    too_hot = execute(world, "set_temperature", {"celsius": 30})
    assert "between 16 and 28" in too_hot["error"] and world.vehicle.cabin_c["driver"] == 19.5
    assert "zone must be one of" in execute(world, "set_temperature", {"celsius": 20, "zone": "trunk"})["error"]
    assert execute(world, "set_fan", {"level": 4}) == {"fan": 4} and world.vehicle.fan == 4
    assert "0-5" in execute(world, "set_fan", {"level": 6})["error"] and world.vehicle.fan == 4
    assert "whole number" in execute(world, "set_fan", {"level": 2.5})["error"]
    assert execute(world, "set_fan", {"level": float("inf")}) == {"error": "level must be a number", "got": "inf"}


def test_seat_heating(world):
    assert execute(world, "set_seat_heating", {"seat": "Passenger", "level": 3}) == {"seat": "passenger", "level": 3}
    assert world.vehicle.seat_heating == {"driver": 0, "passenger": 3, "rear_left": 0, "rear_right": 0}
    assert "0-3" in execute(world, "set_seat_heating", {"seat": "driver", "level": 4})["error"]
    assert "seat must be one of" in execute(world, "set_seat_heating", {"seat": "roof", "level": 1})["error"]


def test_windows(world):
    assert execute(world, "open_window", {"which": "rear_left"}) == {"window": "rear_left", "state": "open"}
    assert execute(world, "open_window", {"which": "driver"})["state"] == "open"
    assert [w for w, is_open in world.vehicle.windows_open.items() if is_open] == ["driver", "rear_left"]
    assert execute(world, "close_window", {"which": "all"}) == {"window": "all", "state": "closed"}
    assert not any(world.vehicle.windows_open.values())
    assert "which must be one of" in execute(world, "open_window", {"which": "sunroof"})["error"]


def test_media(world):
    assert execute(world, "pause_media", {}) == {"error": "nothing is playing"}
    assert execute(world, "play_media", {"query": "Sibelius"}) == {"playing": "Sibelius"}
    assert execute(world, "pause_media", {}) == {"paused": "Sibelius"} and not world.vehicle.media_playing
    assert "non-empty" in execute(world, "play_media", {"query": "  "})["error"]


def test_call_contact(world):
    assert execute(world, "call_contact", {"name": "mum"}) == {"calling": "Mom"}
    assert execute(world, "call_contact", {"name": "doctor virtanen"}) == {"calling": "Dr. Virtanen"}
    unknown = execute(world, "call_contact", {"name": "Bob"})
    assert unknown["error"] == "no contact named 'Bob'" and "Anna" in unknown["contacts"]
    assert world.vehicle.call == "Dr. Virtanen"


def test_vehicle_status(world):
    execute(world, "open_window", {"which": "passenger"})
    execute(world, "play_media", {"query": "jazz"})
    execute(world, "navigate_to", {"destination": "Stockmann"})
    status = execute(world, "vehicle_status", {})
    assert status["location"] == "Senaatintori" and status["battery_pct"] == 80 and status["range_km"] == 336
    assert status["windows_open"] == ["passenger"] and status["media"] == "playing jazz"
    assert status["navigation"]["destination"] == "Stockmann"


def test_bad_calls_are_errors(world):
    assert execute(world, "fly_to_moon", {})["error"] == "unknown tool 'fly_to_moon'"
    assert "not valid JSON" in execute(world, "set_fan", '{"level": 3')["error"]
    assert "must be a JSON object" in execute(world, "set_fan", "[3]")["error"]
    assert "unexpected argument 'speed'" in execute(world, "set_fan", {"level": 2, "speed": 3})["error"]
    assert "missing required argument 'level'" in execute(world, "set_fan", {"level": None})["error"]


@pytest.mark.parametrize("name", NAMES + ["", None])
def test_execute_never_raises(world, name):
    garbage = [None, "", "{", "null", "[]", 7, {"x": 1}, {"destination": {"a": 1}}, {"celsius": True},
               {"category": []}, {"level": "nan"}, {"level": float("inf")}, {"which": 3}, {"name": ""}]
    for arguments in garbage:
        result = execute(world, name, arguments)
        assert isinstance(result, dict) and json.dumps(result)


def test_results_are_compact(world):
    calls = [("navigate_to", {"destination": "Palace Hotel"}), ("route_info", {}),
             ("find_nearby", {"category": "restaurant"}), ("vehicle_status", {}), ("find_nearby", {"category": "x"})]
    for name, arguments in calls:
        assert len(json.dumps(execute(world, name, arguments), ensure_ascii=False)) < 400
