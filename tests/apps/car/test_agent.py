"""The agent loop with scripted replies (multi-call, follow-ups, the round limit, broken JSON), reply parsing,
the rendered prompt, and the real backends: an in-process LLM and an OpenAI-compatible server."""
import json

import pytest

from qwenkit.apps.car.agent import CarAgent
from qwenkit.apps.car.backends import LLMBackend, OpenAIBackend, base_url, parse_reply
from qwenkit.apps.car.prompt import SYSTEM_PROMPT, TUNED_PROMPT, compact
from qwenkit.apps.car.tools import TOOL_SCHEMAS
from qwenkit.apps.car.world import World


def block(name: str, **arguments) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


class Scripted:
    """Replies with fixed model outputs, one per step, and keeps the messages it was shown."""

    def __init__(self, *outputs: str):
        self.outputs, self.seen = list(outputs), []

    def reply(self, messages):
        self.seen.append([dict(m) for m in messages])
        return parse_reply(self.outputs.pop(0))


@pytest.fixture()
def world():
    return World.create(0)


def test_one_turn_with_two_calls(world):
    backend = Scripted(block("set_temperature", celsius=21) + "\n" + block("set_seat_heating", seat="driver", level=2),
                       "Temperature set to 21 degrees. Driver seat heating set to 2.")
    agent = CarAgent(world, backend)
    turn = agent.turn("set 21 degrees and turn on my seat heating")
    assert [c.name for c in turn.tool_calls] == ["set_temperature", "set_seat_heating"]
    assert turn.tool_results == [{"zone": "all", "celsius": 21.0}, {"seat": "driver", "level": 2}]
    status = world.execute("vehicle_status")
    assert status["cabin_c"]["driver"] == 21.0 and status["seat_heating"]["driver"] == 2
    assert turn.answer == "Temperature set to 21 degrees. Driver seat heating set to 2."
    assert turn.rounds == 1 and set(turn.timings) == {"llm", "tools", "total"}
    roles = [m["role"] for m in agent.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant"]
    assert agent.messages[3]["content"] == compact(turn.tool_results[0])
    second_step = backend.seen[1]
    assert second_step[-1]["role"] == "tool" and len(second_step[2]["tool_calls"]) == 2


def test_follow_ups_see_the_conversation(world):
    backend = Scripted(block("navigate_to", destination="Ateneum"), "Navigating to Ateneum.",
                       block("route_info"), "1.0 km left.",
                       block("set_temperature", celsius=22, zone="driver"), "Driver side 22.",
                       block("set_temperature", celsius=20, zone="driver"), "Driver side 20.")
    agent = CarAgent(world, backend)
    first = agent.turn("take me to Ateneum")
    assert first.tool_results[0]["destination"] == "Ateneum"
    follow = agent.turn("how long will it take?")
    assert follow.tool_results[0]["remaining_km"] == first.tool_results[0]["distance_km"]
    shown = backend.seen[2]
    assert shown[1]["content"] == "take me to Ateneum" and '"distance_km"' in shown[3]["content"]
    agent.turn("set my side to 22 degrees")
    agent.turn("make it 20 degrees instead")
    cabin = world.execute("vehicle_status")["cabin_c"]
    assert cabin["driver"] == 20.0 and cabin["passenger"] == 21.0
    assert [m["content"] for m in backend.seen[-1] if m["role"] == "user"][-1] == "make it 20 degrees instead"
    agent.reset()
    assert agent.messages == [{"role": "system", "content": SYSTEM_PROMPT}]


def test_the_loop_stops_after_three_tool_rounds(world):
    backend = Scripted(*[block("vehicle_status")] * 4)
    turn = CarAgent(world, backend).turn("status?")
    assert turn.rounds == 3 and len(turn.tool_calls) == 3 and len(backend.seen) == 4
    assert turn.answer == ""


def test_broken_calls_are_counted_and_never_spoken(world):
    backend = Scripted('<tool_call>\n{"name": "set_fan", "arguments": {"level": }\n</tool_call>Fan is on.')
    turn = CarAgent(world, backend).turn("fan to 3")
    assert turn.invalid_calls == 1 and turn.tool_calls == [] and turn.answer == "Fan is on."


def test_parse_reply_handles_thinking_strings_and_cut_off_blocks():
    reply = parse_reply("<think>maybe a call</think>\n" + block("pause_media"))
    assert [c.name for c in reply.calls] == ["pause_media"] and reply.content == ""
    stringy = parse_reply('<tool_call>{"name": "set_fan", "arguments": "{\\"level\\": 2}"}</tool_call>')
    assert stringy.calls[0].arguments == {"level": 2}
    cut = parse_reply('OK.<tool_call>\n{"name": "navigate_to", "arguments": {"destin')
    assert cut.calls == [] and cut.invalid == 1 and cut.content == "OK."
    assert parse_reply("Just text.").content == "Just text."


def test_system_prompt_is_short_and_lists_every_tool():
    names = [s["function"]["name"] for s in TOOL_SCHEMAS]
    lines = SYSTEM_PROMPT.splitlines()[1:]
    assert [line.split("(")[0] for line in lines] == names
    assert "find_nearby(category, max_distance_m?)" in SYSTEM_PROMPT
    assert len(SYSTEM_PROMPT) < 900


def test_the_prompt_follows_the_backend(world):
    """A tuned adapter has learned the tools and gets the short prompt it was tuned on; a model that has not (the
    base, an endpoint) gets the tool list; a backend that says nothing gets the tool list too."""
    assert SYSTEM_PROMPT.splitlines()[0] == TUNED_PROMPT and "navigate_to" not in TUNED_PROMPT
    assert CarAgent(world, Scripted()).messages[0]["content"] == SYSTEM_PROMPT
    tuned = Scripted()
    tuned.system = TUNED_PROMPT
    agent = CarAgent(world, tuned)
    agent.reset()
    assert agent.messages == [{"role": "system", "content": TUNED_PROMPT}]
    assert CarAgent(world, tuned, system="custom").messages[0]["content"] == "custom"
    assert OpenAIBackend("http://127.0.0.1:9", model="m").system == SYSTEM_PROMPT
    assert OpenAIBackend("http://127.0.0.1:9", model="m:car", tuned=True).system == TUNED_PROMPT


def test_conversation_renders_with_qwen_style_tools(world, smollm2_gguf):
    from qwenkit.loading import load_checkpoint
    tokenizer = load_checkpoint(smollm2_gguf).tokenizer
    assert len(tokenizer.encode(SYSTEM_PROMPT)) <= 250
    agent = CarAgent(world, Scripted(block("find_nearby", category="cafe"), "The nearest cafe is close."))
    agent.turn("coffee?")
    text = tokenizer.render_chat(agent.messages, add_generation_prompt=False)
    assert '<tool_call>\n{"name": "find_nearby", "arguments": {"category": "cafe"}}\n</tool_call>' in text
    assert "<|im_start|>user\n<tool_response>\n{\"category\":\"cafe\"" in text


def test_llm_backend_runs_the_loop_on_a_real_model(tiny_models, world):
    from qwenkit.llm import LLM
    folder, _ = tiny_models("qwen2")
    llm = LLM(str(folder), device="cpu", quant="none", max_model_len=1024)
    turn = CarAgent(world, LLMBackend(llm, max_tokens=8)).turn("set the fan to 3")
    assert turn.raw and all(len(llm.tokenizer.encode(r)) <= 9 for r in turn.raw)
    assert turn.timings["llm"] > 0 and turn.timings["total"] >= turn.timings["llm"]


def test_tool_grammar_admits_only_calls_the_tools_accept(smollm2_gguf):
    from qwenkit.apps.car.backends import tool_grammar
    from qwenkit.llm import LLM
    llm = LLM(str(smollm2_gguf), threads=1)
    constraint = tool_grammar(llm)

    def accepts(text: str) -> bool:
        matcher = constraint().matcher
        return all(matcher.accept_token(t) for t in llm.tokenizer.encode(text))

    call = block("find_nearby", category="toilets")
    assert accepts("Let me look. " + call) and accepts(call + "\n" + block("set_fan", level=5))
    assert accepts("The nearest cafe is 300 m away.")
    assert not accepts(call.replace("toilets", "bathrooms"))                    # no such category
    assert not accepts(block("set_fan", level=17))                              # fan levels are 0-5
    assert not accepts(block("open_window", which="sunroof"))
    assert not accepts(block("fly_to", destination="the moon"))                  # no such tool
    assert not accepts(block("navigate_to", place="Kamppi"))                     # no such argument
    assert accepts(block("set_temperature", celsius=35))   # the tool itself explains an out-of-range temperature


@pytest.mark.slow
def test_constrained_backend_calls_are_always_valid(smollm2_gguf, world):
    from qwenkit.apps.car import SHIPPED_ADAPTER
    from qwenkit.apps.car.tools import check_arguments
    from qwenkit.llm import LLM
    llm = LLM(str(smollm2_gguf), threads=2, adapters={"car": SHIPPED_ADAPTER})
    backend = LLMBackend(llm, adapter="car")
    assert backend.system == TUNED_PROMPT and LLMBackend(llm).system == SYSTEM_PROMPT
    for request in ["Are there any restrooms around?", "are there any EV chargers around?", "Max fan"]:
        turn = CarAgent(World.create(0), backend).turn(request)
        assert turn.tool_calls and turn.invalid_calls == 0, (request, turn.raw)
        for call in turn.tool_calls:
            check_arguments(call.name, call.arguments)   # raises ArgumentError on a value the tool refuses


def test_openai_backend_against_qwenkit_serve(tiny_models, world):
    from qwenkit.apps.car.datagen import generate, messages
    from qwenkit.server.app import create_app
    from tests.server.conftest import LiveServer, make_pool
    case = next(c for c in generate(0, {"test": 40})["test"] if c.kind == "follow_up")
    with LiveServer(create_app(make_pool(tiny_models("qwen3")[0], smollm2=False))) as live:
        backend = OpenAIBackend(live.url, max_tokens=8)
        assert backend.model == "tiny" and backend.endpoint == live.url + "/v1"
        reply = backend.reply(messages(case)[:-1])   # the gold history, tool calls and results included
        assert reply.raw
        turn = CarAgent(world, backend).turn("how far is it?")
        assert turn.timings["llm"] > 0


def test_endpoint_urls():
    assert base_url("http://127.0.0.1:11434") == "http://127.0.0.1:11434/v1"
    assert base_url("http://host:8000/v1/") == "http://host:8000/v1"
    with pytest.raises(ValueError):
        base_url("127.0.0.1:8000")


def test_car_repl_with_the_baseline(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from qwenkit.cli.main import app
    monkeypatch.chdir(tmp_path)
    lines = ["take me to Ateneum", "how long will it take?", "/status", "/route", "/reset", "/route", "/quit"]
    result = CliRunner().invoke(app, ["car", "--baseline"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert "Navigating to Ateneum, 1.0 km" in result.output and "km to Ateneum" in result.output
    assert "llm " in result.output and "total " in result.output
    assert '"battery_pct"' in result.output and "no active route" in result.output
    assert (tmp_path / "route.png").read_bytes()[:4] == b"\x89PNG"


def test_car_answers_a_spoken_request(tmp_path):
    from typer.testing import CliRunner

    from qwenkit.apps.car.voice import MissingExtraError, Speaker
    from qwenkit.cli.main import app
    try:
        speaker = Speaker("piper")
        speaker.engine.steady()
        speaker.say_to("Take me to Ateneum, please.", tmp_path / "in.wav")
    except MissingExtraError as e:
        pytest.skip(str(e))
    args = ["car", "--baseline", "--audio", str(tmp_path / "in.wav"), "--say-to", str(tmp_path / "out.wav")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "heard: Take me to Ateneum" in result.output and "Navigating to Ateneum" in result.output
    assert "asr " in result.output and (tmp_path / "out.wav").stat().st_size > 1000
