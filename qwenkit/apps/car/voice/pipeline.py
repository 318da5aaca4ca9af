"""One spoken turn: wake phrase -> speech recognition -> the agent -> a spoken reply in a WAV file.

Latency is counted the way a driver feels it: from the end of the command to the first reply audio,
`total = asr + respond + tts_first_audio`. The wake word runs while the driver speaks, so it is reported
apart. `respond` is the agent: it returns a str, or an object with `.answer` and `.timings`
(a dict of seconds such as {"llm": 0.8, "tools": 0.05}).
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qwenkit.apps.car.voice.asr import Transcriber
from qwenkit.apps.car.voice.audio import ASR_RATE, load_audio, trim_silence
from qwenkit.apps.car.voice.tts import Speaker
from qwenkit.apps.car.voice.wake import WakeWord


@dataclass(slots=True)
class Reply:
    answer: str
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class TurnResult:
    woke_at: float | None  # seconds into the input where the wake phrase ended
    heard: str | None
    answer: str | None
    output: Path | None
    latencies: dict[str, float]


def as_reply(value: Any) -> Reply:
    if isinstance(value, str):
        return Reply(value)
    return Reply(str(value.answer), dict(getattr(value, "timings", None) or {}))


class VoiceTurn:
    def __init__(self, respond: Callable[[str], Any], wake: WakeWord | None = None,
                 transcriber: Transcriber | None = None, speaker: Speaker | None = None, places: Sequence[str] = ()):
        self.respond, self.wake, self.places = respond, wake, list(places)
        self.transcriber = transcriber or Transcriber()
        self.speaker = speaker or Speaker()

    def run(self, audio: str | Path | bytes | np.ndarray, output: str | Path,
            sample_rate: int = ASR_RATE) -> TurnResult:
        samples = load_audio(audio, sample_rate)
        latencies: dict[str, float] = {}
        woke_at = 0.0
        if self.wake is not None:
            start = time.perf_counter()
            woke_at = self.wake.detect(samples)
            latencies["wake"] = time.perf_counter() - start
            if woke_at is None:
                return TurnResult(None, None, None, None, latencies)
        command = trim_silence(samples[int(woke_at * ASR_RATE) :], ASR_RATE)
        if len(command) == 0:
            return TurnResult(woke_at, "", None, None, latencies)

        transcript = self.transcriber.transcribe(command, self.places)
        latencies["asr"] = transcript.seconds
        if not transcript.text:
            return TurnResult(woke_at, "", None, None, latencies)
        start = time.perf_counter()
        reply = as_reply(self.respond(transcript.text))
        latencies["respond"] = time.perf_counter() - start
        latencies |= reply.timings
        latencies.setdefault("llm", latencies["respond"] - sum(reply.timings.values()))

        speech = self.speaker.say_to(reply.answer, output)
        latencies["tts_first_audio"] = speech.first_audio
        latencies["tts"] = speech.seconds
        latencies["total"] = transcript.seconds + latencies["respond"] + speech.first_audio
        return TurnResult(woke_at, transcript.text, reply.answer, speech.path, latencies)
