"""`qwenkit car`: talk to the in-car assistant on the Helsinki map (text, one WAV file in and a spoken reply
out, or live voice with a wake phrase), and `qwenkit car data`: write its training and evaluation data."""
import json
from pathlib import Path
from typing import Annotated

import typer

from qwenkit.cli.common import console, fail, friendly_errors

car_app = typer.Typer(help="In-car assistant: chat with it, or write its training data.")
HELP = "/status car state · /route save the route map · /reset new car · /quit"


def register(app: typer.Typer) -> None:
    app.add_typer(car_app, name="car")


def make_backend(model: str | None, adapter: Path | None, endpoint: str | None, baseline: bool, max_tokens: int,
                 untuned: bool = False, tuned_prompt: bool = False, **llm_options) -> tuple[str, object]:
    """(a name to show, the backend) for the chosen system; the default is the built-in model with the adapter
    qwenkit ships for the car."""
    from qwenkit.apps.car.backends import LLMBackend, OpenAIBackend
    from qwenkit.apps.car.baseline import BaselineBackend
    if baseline and (model or adapter or endpoint):
        fail("--baseline runs no model: drop --model, --adapter and --endpoint")
    if tuned_prompt and not endpoint:
        fail("--tuned-prompt is for --endpoint; a model run here picks its prompt from --adapter")
    if adapter is None and model is None and endpoint is None and not untuned:
        from qwenkit.apps.car import SHIPPED_ADAPTER
        adapter = SHIPPED_ADAPTER  # the embedded model as qwenkit tuned it for the car
    if endpoint and adapter:
        fail("--adapter applies to a model run here; for an endpoint, serve it with `qwenkit serve --adapter "
             "car=DIR` and pass --model MODEL:car")
    if baseline:
        return "regex baseline", BaselineBackend()
    if endpoint:
        backend = OpenAIBackend(endpoint, model, max_tokens=max_tokens, tuned=tuned_prompt)
        return f"{backend.model} @ {endpoint}", backend
    from qwenkit.llm import DEFAULT_MODEL, LLM
    from qwenkit.store import enforce_offline
    enforce_offline()
    model = model or DEFAULT_MODEL
    with console.status(f"loading {model}"):
        llm = LLM(model, adapters={"car": str(adapter)} if adapter else None, **llm_options)
    name = f"{model} + {adapter}" if adapter else model
    return name, LLMBackend(llm, adapter="car" if adapter else None, max_tokens=max_tokens)


@car_app.callback(invoke_without_command=True)
@friendly_errors
def car(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Model (default smollm2:135m); with --endpoint, its name "
                                              "there")] = None,
    adapter: Annotated[Path | None, typer.Option(help="LoRA adapter folder from `qwenkit tune` (default: the car "
                                                 "adapter qwenkit ships, on the default model)")] = None,
    endpoint: Annotated[str | None, typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000")]
    = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Use the regex baseline instead of a model")]
    = False,
    untuned: Annotated[bool, typer.Option("--untuned", help="Run the default model without the shipped car "
                                          "adapter, to see what tuning changed")] = False,
    tuned_prompt: Annotated[bool, typer.Option("--tuned-prompt", help="With --endpoint: the server runs a car "
                                               "adapter qwenkit tuned, so send its short system prompt instead of "
                                               "the tool list")] = False,
    seed: Annotated[int, typer.Option(help="Car start: 0 is Senaatintori, others vary place and state")] = 0,
    audio: Annotated[Path | None, typer.Option(help="Answer one spoken request from this WAV file; with --voice, "
                                               "the file stands in for the microphone")] = None,
    say_to: Annotated[Path | None, typer.Option(help="Speak each answer into this WAV file (with --voice, answer n "
                                                "goes to FILE-n.wav)")] = None,
    voice: Annotated[bool, typer.Option("--voice", help="Live voice: say the wake phrase, then the request; each "
                                        "answer is spoken and it listens again until Ctrl-C. Listens to the "
                                        "microphone, or with --audio to a WAV file as if live (it may hold several "
                                        "requests, each after the wake phrase)")] = False,
    wake_phrase: Annotated[str, typer.Option(help="Wake phrase for --voice")] = "hey car",
    max_tokens: Annotated[int, typer.Option(help="Most new tokens per model step")] = 96,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "auto",
    quant: Annotated[str, typer.Option(help="auto, none, int8, int4")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads")] = None,
) -> None:
    """Chat with the car assistant: each turn prints the tool calls, the answer and the time per stage."""
    if ctx.invoked_subcommand is not None:
        return
    from qwenkit.apps.car.agent import CarAgent
    from qwenkit.apps.car.world import World
    listening = open_listening(audio, wake_phrase) if voice else None
    name, backend = make_backend(model, adapter, endpoint, baseline, max_tokens, untuned, tuned_prompt, device=device,
                                 quant=quant, threads=threads)
    agent = CarAgent(World.create(seed), backend)
    if listening is not None:
        return live_voice(agent, *listening, say_to)
    if audio is not None:
        return voice_turn(agent, audio, say_to or Path("reply.wav"))
    console.print(f"[dim]car assistant on {name}; the car is at {agent.world.vehicle.location}. {HELP}[/]")
    while True:
        try:
            line = console.input("[bold green]you> [/]").strip()
        except EOFError:
            return
        if line in ("/quit", "/exit", "/bye"):
            return
        if line.startswith("/"):
            command(agent, line)
        elif line:
            show_turn(agent.turn(line), say_to)


def command(agent, line: str) -> None:
    world = agent.world
    if line == "/reset":
        world.reset()
        agent.reset()
        console.print(f"[dim]new conversation; the car is at {world.vehicle.location}[/]")
    elif line == "/status":
        console.print_json(json.dumps(world.execute("vehicle_status"), ensure_ascii=False))
    elif line == "/route":
        nav = world.vehicle.navigation
        if nav is None:
            console.print("[dim]no active route: ask to navigate somewhere first[/]")
            return
        from qwenkit.apps.car.route_plot import plot_route
        path = plot_route(world.road_map, nav.route, "route.png", world.vehicle.location, nav.destination)
        console.print(f"route map: {path}")
    else:
        console.print(f"[dim]unknown command {line}; {HELP}[/]")


def show_turn(turn, say_to: Path | None = None) -> None:
    for call, result in zip(turn.tool_calls, turn.tool_results):
        args = json.dumps(call.arguments, ensure_ascii=False)
        console.print(f"[dim]  {call.name}({args}) -> {json.dumps(result, ensure_ascii=False)}[/]", soft_wrap=True)
    print(turn.answer or "(no answer)", flush=True)
    t = turn.timings
    stages = f"llm {t['llm']:.2f} s · tools {1000 * t['tools']:.0f} ms"
    if say_to is not None:
        from qwenkit.apps.car.voice import Speaker
        speech = Speaker().say_to(turn.answer, say_to)
        stages += f" · tts first audio {speech.first_audio:.2f} s -> {speech.path}"
    console.print(f"[dim]  {stages} · total {t['total']:.2f} s[/]")


def spoken_places(world) -> list[str]:
    """Names for the speech recognizer's prompt, best known first: the landmarks, then hotels, museums, sights."""
    from qwenkit.apps.car.places import LANDMARKS
    from qwenkit.apps.car.world import START_PLACES
    return [*START_PLACES, *(p.name for p in world.places.places if LANDMARKS.intersection(p.categories))]


def voice_turn(agent, audio: Path, output: Path) -> None:
    from qwenkit.apps.car.voice import VoiceTurn
    result = VoiceTurn(agent.turn, places=spoken_places(agent.world)).run(audio, output)
    if not result.heard:
        fail(f"{audio}: no speech recognised")
    console.print(f"heard: {result.heard}")
    print(result.answer, flush=True)
    stages = " · ".join(f"{k} {v:.2f} s" for k, v in result.latencies.items())
    console.print(f"[dim]  {stages}; reply: {result.output}[/]")


def open_listening(audio: Path | None, wake_phrase: str) -> tuple:
    """The audio source and wake word, checked before any model loads: no microphone is an error at once."""
    from qwenkit.apps.car.voice import WakeWord
    from qwenkit.apps.car.voice.live import microphone_chunks, wav_chunks
    source = wav_chunks(audio) if audio is not None else microphone_chunks()
    return source, WakeWord(wake_phrase)


def live_voice(agent, source, wake, say_to: Path | None) -> None:
    from qwenkit.apps.car.voice.live import LiveVoice, latency_line, speakers
    player = speakers()
    output = say_to or (None if player else Path("reply.wav"))
    with console.status("loading speech recognition and the voice"):
        live = LiveVoice(agent.turn, source, wake=wake, places=spoken_places(agent.world), player=player,
                         say_to=output)
    console.print(f"[dim]car assistant at {agent.world.vehicle.location}; listening for '{wake.phrase}' "
                  "(Ctrl-C stops)[/]")
    try:
        for turn in live.turns():
            if not turn.heard:
                console.print(f"[dim]  woke at {turn.woke_at:.1f} s but heard no request[/]")
                continue
            console.print(f"heard: {turn.heard}")
            for call, result in zip(turn.response.tool_calls, turn.response.tool_results):
                args = json.dumps(call.arguments, ensure_ascii=False)
                console.print(f"[dim]  {call.name}({args}) -> {json.dumps(result, ensure_ascii=False)}[/]",
                              soft_wrap=True)
            print(turn.answer or "(no answer)", flush=True)
            reply = f"; reply: {turn.output}" if turn.output else ""
            console.print(f"[dim]  {latency_line(turn.latencies)}{reply}[/]", soft_wrap=True)
    except KeyboardInterrupt:
        console.print()
    console.print(f"[dim]{live.count} requests answered[/]")


@car_app.command("data")
@friendly_errors
def data(
    out: Annotated[Path, typer.Option(help="Folder for train.jsonl, val.jsonl, test/, cases/, stats.json")],
    seed: Annotated[int, typer.Option(help="Same seed, same data")] = 0,
    train: Annotated[int, typer.Option(help="Training examples")] = 3000,
    val: Annotated[int, typer.Option(help="Validation examples")] = 200,
    test: Annotated[int, typer.Option(help="Test cases (held-out phrasings and destinations)")] = 300,
    max_tokens: Annotated[int, typer.Option(help="Longest training example, system prompt included")] = 400,
    model: Annotated[str, typer.Option(help="Model whose tokenizer counts the tokens")] = "smollm2:135m",
) -> None:
    """Write in-car requests, the tool calls they need and the spoken answers, as OpenAI chat JSONL for
    `qwenkit tune --data OUT/train.jsonl --eval OUT/val.jsonl`, plus the structured cases for `qwenkit eval car`."""
    from rich.table import Table

    from qwenkit.apps.car.datagen import generate, write
    from qwenkit.loading import load_checkpoint
    from qwenkit.store import enforce_offline, resolve
    enforce_offline()
    tokenizer = load_checkpoint(resolve(model).path).tokenizer
    with console.status("generating"):
        splits = generate(seed, {"train": train, "val": val, "test": test}, tokenizer, max_tokens)
    stats = write(out, splits, tokenizer)
    grid = Table("split", "examples", "turns", "templates", "destinations", "mean tokens", "p95", "max")
    for split, s in stats["splits"].items():
        tokens = s["tokens"]
        grid.add_row(split, str(s["examples"]), str(s["turns"]), str(s["templates"]), str(s["destinations"]),
                     f"{tokens['mean']:.0f}", str(tokens["p95"]), str(tokens["max"]))
    from rich.console import Console
    Console(highlight=False).print(grid)
    print(f"system prompt: {stats['system_prompt_tokens']} tokens; wrote {out}")
