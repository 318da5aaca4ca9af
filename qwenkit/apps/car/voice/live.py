"""Live voice: wait for the wake phrase in a stream of 16 kHz PCM chunks, take the command until the driver pauses,
answer it aloud, and wait again.

Latency counts from the moment the driver stops speaking: `total = endpoint + asr + respond + tts_first_audio`,
where `endpoint` is the quiet waited to be sure the command is over. `wake` is how much audio after the wake
phrase the spotter needed before it fired.
"""

import dataclasses
import importlib
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from qwenkit.apps.car.voice.asr import Transcriber
from qwenkit.apps.car.voice.audio import ASR_RATE, frame_db, from_pcm16, load_audio, to_pcm16, write_wav
from qwenkit.apps.car.voice.extras import MissingExtraError
from qwenkit.apps.car.voice.pipeline import as_reply
from qwenkit.apps.car.voice.tts import Speaker
from qwenkit.apps.car.voice.wake import WakeWord
from qwenkit.errors import QwenkitError

CHUNK_S = 0.1
NO_MIC = "no microphone found; use --audio FILE.wav for a recorded request"
STAGES = {"wake": "wake", "endpoint": "endpoint", "asr": "asr", "llm": "llm", "tools": "tools",
          "tts_first_audio": "tts first audio", "total": "total"}


# Sources: iterables of 16-bit PCM chunks at 16 kHz

def wav_chunks(path: str | Path, chunk_s: float = CHUNK_S) -> Iterator[bytes]:
    """A WAV file cut into chunks as a microphone would deliver them (read now, so a bad file fails at once)."""
    pcm = to_pcm16(load_audio(path))
    step = 2 * int(ASR_RATE * chunk_s)
    return (pcm[i : i + step] for i in range(0, len(pcm), step))


def sounddevice() -> ModuleType:
    try:
        return importlib.import_module("sounddevice")
    except ImportError as e:
        raise MissingExtraError("sounddevice", "Live voice") from e
    except OSError as e:  # the module is there, the PortAudio library is not
        raise QwenkitError(f"{NO_MIC} (PortAudio is missing: {e}; apt-get install libportaudio2)") from e


class Microphone:
    """An input device at 16 kHz mono int16; `drain` drops what it heard while the assistant was busy."""

    def __init__(self, sd: ModuleType, device: int | str | None, chunk_s: float):
        self.chunks: queue.Queue[bytes] = queue.Queue()
        self.stream = sd.RawInputStream(samplerate=ASR_RATE, blocksize=int(ASR_RATE * chunk_s), device=device,
                                        channels=1, dtype="int16", callback=self._collect)
        self.stream.start()

    def _collect(self, data, frames: int, when, status) -> None:
        self.chunks.put(bytes(data))

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                try:
                    yield self.chunks.get(timeout=2.0)
                except queue.Empty:
                    raise QwenkitError("the microphone stopped sending audio") from None
        finally:
            self.stream.close()

    def drain(self) -> None:
        while not self.chunks.empty():
            self.chunks.get_nowait()


def microphone_chunks(device: int | str | None = None, chunk_s: float = CHUNK_S) -> Microphone:
    sd = sounddevice()
    try:
        info = sd.query_devices(device, kind="input")
    except (ValueError, sd.PortAudioError):
        info = None
    if not info or info["max_input_channels"] < 1:
        raise QwenkitError(NO_MIC)
    return Microphone(sd, device, chunk_s)


class Player:
    """Plays sentence after sentence; `play` returns at once, so the next sentence is synthesized meanwhile."""

    def __init__(self, sd: ModuleType):
        self.sd = sd

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        self.sd.wait()
        self.sd.play(samples, sample_rate)

    def wait(self) -> None:
        self.sd.wait()


def speakers() -> Player | None:
    """The default output device, or None when there is none."""
    try:
        sd = importlib.import_module("sounddevice")
    except (ImportError, OSError):
        return None
    try:
        sd.query_devices(kind="output")
    except (ValueError, sd.PortAudioError):
        return None
    return Player(sd)


# Listening

class Tape:
    """Passes chunks through and keeps the last `keep_s` seconds, so audio the wake word consumed can be read back."""

    def __init__(self, chunks: Iterable[bytes], keep_s: float = 6.0):
        self.chunks, self.keep = iter(chunks), int(keep_s * ASR_RATE)
        self.kept: deque[bytes] = deque()
        self.position = self.kept_from = 0  # samples read so far; the sample where `kept` starts

    def __iter__(self) -> "Tape":
        return self

    def __next__(self) -> bytes:
        chunk = next(self.chunks)
        self.kept.append(chunk)
        self.position += len(chunk) // 2
        while self.position - self.kept_from - len(self.kept[0]) // 2 >= self.keep:
            self.kept_from += len(self.kept.popleft()) // 2
        return chunk

    def since(self, sample: int) -> np.ndarray:
        return from_pcm16(b"".join(self.kept))[max(0, sample - self.kept_from) :]


@dataclass(slots=True)
class Endpointer:
    """Speech is `margin_db` above the noise heard before it and within `range_db` of the loudest frame; it has
    ended after `hangover_s` of quiet. Stretches shorter than `min_speech_s` (a click, the wake phrase's tail)
    are not a command."""

    floor_db: float = -90.0
    margin_db: float = 12.0
    range_db: float = 35.0
    hangover_s: float = 0.6
    min_speech_s: float = 0.25
    frame_s: float = 0.02

    def speech(self, samples: np.ndarray) -> tuple[float, float] | None:
        """(start, end) in seconds of the first stretch of speech long enough to be a command."""
        energy = frame_db(samples, ASR_RATE, self.frame_s)
        loud = np.flatnonzero(energy > max(self.floor_db + self.margin_db, energy.max(initial=-90) - self.range_db,
                                           -70.0))
        if len(loud) == 0:
            return None
        breaks = np.flatnonzero(np.diff(loud) * self.frame_s > self.hangover_s)
        for first, last in zip(np.r_[0, breaks + 1], np.r_[breaks, len(loud) - 1]):
            start, end = loud[first] * self.frame_s, (loud[last] + 1) * self.frame_s
            if end - start >= self.min_speech_s:
                return float(start), float(end)
        return None

    def ended(self, samples: np.ndarray) -> tuple[float, float] | None:
        found = self.speech(samples)
        return found if found and len(samples) / ASR_RATE - found[1] >= self.hangover_s else None


def noise_floor(samples: np.ndarray) -> float:
    energy = frame_db(samples, ASR_RATE)
    return float(np.percentile(energy, 10)) if len(energy) else -90.0


def capture(tape: Tape, start: int, endpointer: Endpointer, wait_s: float = 5.0,
            max_command_s: float = 8.0) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Audio from sample `start` until the command ends (or `max_command_s` of it, or the stream ends), with its
    speech bounds; None for them when nothing was said within `wait_s`."""
    audio = tape.since(start)
    while True:
        found = endpointer.speech(audio)
        heard = len(audio) / ASR_RATE
        if found is None and heard >= wait_s or found and heard - found[0] >= max_command_s:
            return audio, found
        if endpointer.ended(audio):
            return audio, found
        chunk = next(tape, None)
        if chunk is None:
            return audio, found
        audio = np.concatenate([audio, from_pcm16(chunk)])


# The loop

@dataclass(slots=True)
class LiveTurn:
    woke_at: float  # seconds into the stream where the wake phrase ended
    heard: str  # "" when the wake phrase came without a command
    answer: str | None
    output: Path | None  # the reply WAV, when one was written
    latencies: dict[str, float]
    response: Any = None  # what `respond` returned: for a CarAgent, its Turn with the tool calls


def latency_line(latencies: dict[str, float]) -> str:
    return " · ".join(f"{label} {latencies[key]:.2f} s" for key, label in STAGES.items() if key in latencies)


class LiveVoice:
    """`turns()` answers each wake phrase + command in `source` until it ends; Ctrl-C (KeyboardInterrupt) stops it.
    Replies play on `player` and, with `say_to=reply.wav`, turn n is also written to reply-n.wav."""

    def __init__(self, respond: Callable[[str], Any], source: Iterable[bytes], speaker: Speaker | None = None,
                 wake: WakeWord | None = None, transcriber: Transcriber | None = None, places: Sequence[str] = (),
                 player: Player | None = None, say_to: str | Path | None = None, endpointer: Endpointer | None = None,
                 wait_s: float = 5.0, max_command_s: float = 8.0):
        self.respond, self.source, self.places, self.player = respond, source, list(places), player
        self.wake = wake or WakeWord()
        self.transcriber = transcriber or Transcriber()
        self.speaker = speaker or Speaker()
        self.say_to = Path(say_to) if say_to is not None else None
        self.endpointer = endpointer or Endpointer()
        self.wait_s, self.max_command_s = wait_s, max_command_s
        self.count = 0

    def turns(self) -> Iterator[LiveTurn]:
        tape, drain = Tape(self.source), getattr(self.source, "drain", lambda: None)
        while True:
            drain()  # half duplex: what the microphone heard while models loaded or the car spoke is dropped
            began = tape.position
            woke = self.wake.listen(tape)
            if woke is None:
                return
            wake_end = min(began + int(woke * ASR_RATE), tape.position)
            latencies = {"wake": (tape.position - wake_end) / ASR_RATE}
            before = tape.since(0)[: max(0, wake_end - tape.kept_from)]
            endpointer = dataclasses.replace(self.endpointer, floor_db=noise_floor(before))
            audio, found = capture(tape, wake_end, endpointer, self.wait_s, self.max_command_s)
            yield self.answer(wake_end / ASR_RATE, audio, found, latencies)

    def answer(self, woke_at: float, audio: np.ndarray, found: tuple[float, float] | None,
               latencies: dict[str, float]) -> LiveTurn:
        if found is None:
            return LiveTurn(woke_at, "", None, None, latencies)
        start, end = found
        latencies["endpoint"] = len(audio) / ASR_RATE - end
        command = audio[max(0, int((start - 0.1) * ASR_RATE)) : int((end + 0.15) * ASR_RATE)]
        transcript = self.transcriber.transcribe(command, self.places)
        latencies["asr"] = transcript.seconds
        if not transcript.text.strip():
            return LiveTurn(woke_at, "", None, None, latencies)
        began = time.perf_counter()
        response = self.respond(transcript.text)
        latencies["respond"] = time.perf_counter() - began
        reply = as_reply(response)
        latencies |= {k: v for k, v in reply.timings.items() if k != "total"}
        latencies.setdefault("llm", latencies["respond"] - latencies.get("tools", 0.0))
        self.count += 1
        output, first_audio = self.speak(reply.answer)
        latencies["tts_first_audio"] = first_audio
        latencies["total"] = latencies["endpoint"] + transcript.seconds + latencies["respond"] + first_audio
        return LiveTurn(woke_at, transcript.text, reply.answer, output, latencies, response)

    def speak(self, text: str) -> tuple[Path | None, float]:
        """Plays and/or writes the reply; the seconds until its first sentence was ready."""
        began, first, chunks = time.perf_counter(), 0.0, []
        for chunk in self.speaker.stream(text):
            first = first or time.perf_counter() - began
            if self.player is not None:
                self.player.play(chunk, self.speaker.sample_rate)
            chunks.append(chunk)
        if self.player is not None:
            self.player.wait()
        if self.say_to is None:
            return None, first
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        path = self.say_to.with_name(f"{self.say_to.stem}-{self.count}{self.say_to.suffix or '.wav'}")
        return write_wav(path, samples, self.speaker.sample_rate), first
