"""The regex baseline: plans for typical requests and follow-ups, and a sane score on held-out cases."""
from qwenkit.apps.car.agent import CarAgent
from qwenkit.apps.car.baseline import BaselineBackend, plan
from qwenkit.apps.car.datagen import generate
from qwenkit.apps.car.world import World
from qwenkit.eval.car import System, evaluate, summarize


def call(name: str, /, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def test_requests_become_calls():
    assert plan("Set 21 degrees and turn on my seat heating", []) == [
        call("set_temperature", celsius=21), call("set_seat_heating", seat="driver", level=2)]
    assert plan("Hey car, take me to Hotel Kämp, please.", []) == [call("navigate_to", destination="Hotel Kämp")]
    assert plan("take me to Fish and Chips", []) == [call("navigate_to", destination="Fish and Chips")]
    assert plan("any pharmacies within 500 meters?", []) == [call("find_nearby", category="pharmacy",
                                                                  max_distance_m=500)]
    assert plan("close all the windows, then play jazz", []) == [call("close_window", which="all"),
                                                                 call("play_media", query="jazz")]
    assert plan("call Dr. Virtanen", []) == [call("call_contact", name="Dr. Virtanen")]
    assert plan("what is the meaning of life", []) == []


def test_follow_ups_use_the_previous_calls():
    temperature = [(call("set_temperature", celsius=22, zone="passenger"), {"zone": "passenger", "celsius": 22})]
    assert plan("make it 20 degrees instead", temperature) == [call("set_temperature", celsius=20, zone="passenger")]
    assert plan("two degrees warmer", temperature) == [call("set_temperature", celsius=24, zone="passenger")]
    search = [(call("find_nearby", category="cafe"), {"category": "cafe", "results": [{"name": "Cafe Engel"}]})]
    assert plan("ok, take me there", search) == [call("navigate_to", destination="Cafe Engel")]
    window = [(call("open_window", which="rear_left"), {"window": "rear_left", "state": "open"})]
    assert plan("close it again", window) == [call("close_window", which="rear_left")]
    assert plan("how long will it take?", []) == [call("route_info")]


def test_the_agent_loop_answers_with_the_returned_figures():
    world = World.create(0)
    agent = CarAgent(world, BaselineBackend())
    turn = agent.turn("Navigate to Ateneum")
    result = turn.tool_results[0]
    assert turn.answer == f"Navigating to Ateneum, {result['distance_km']} km, about {result['eta_min']} minutes."
    assert agent.turn("how much longer?").tool_calls[0].name == "route_info"
    assert agent.turn("sing me a song").answer.startswith("Sorry")


def test_baseline_scores_sanely_on_held_out_cases():
    cases = generate(0, {"test": 60})["test"]
    summary = summarize("baseline", evaluate(System("baseline", BaselineBackend()), cases))
    assert summary["turns"] >= 60
    assert summary["exact_match"] >= 0.7   # its rules know the training phrasings; the test holds others out
    assert summary["answer_mentions_figures"] == 1.0 and summary["json_valid"] == 1.0
    assert summary["tools"]["navigate_to"]["expected"] > 0
