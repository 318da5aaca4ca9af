"""Text to speech, sentence by sentence, so the first sentence can play while the rest is synthesized."""

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qwenkit.apps.car.voice.audio import write_wav
from qwenkit.apps.car.voice.engines import EspeakEngine, PiperProcess
from qwenkit.apps.car.voice.extras import MissingExtraError
from qwenkit.errors import InvalidRequestError

ENGINES = {"piper": PiperProcess, "espeak": EspeakEngine}


@dataclass(slots=True)
class Speech:
    path: Path
    sample_rate: int
    audio_seconds: float
    first_audio: float  # seconds from the call until the first sentence's samples were ready
    seconds: float


def split_sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?;:])\s+|\n+", text.strip())
    return [p.strip() for p in parts if p.strip()]


def open_engine(engine: str):
    """'auto' takes piper and falls back to eSpeak NG when piper or its voice is not installed."""
    if engine not in ("auto", *ENGINES):
        raise InvalidRequestError("engine", f"unknown TTS engine {engine!r}; choose auto, piper or espeak")
    if engine != "auto":
        return ENGINES[engine]()
    try:
        return PiperProcess()
    except MissingExtraError:
        return EspeakEngine()


class Speaker:
    def __init__(self, engine: str = "auto", pause_s: float = 0.15):
        self.engine = open_engine(engine)
        self.sample_rate = self.engine.sample_rate
        self.pause = np.zeros(int(pause_s * self.sample_rate), np.float32)

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """Float32 samples at `sample_rate`, one chunk per sentence."""
        for i, sentence in enumerate(split_sentences(text)):
            audio = self.engine.synthesize(sentence)
            yield np.concatenate([self.pause, audio]) if i else audio

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        chunks = list(self.stream(text))
        return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), self.sample_rate

    def say_to(self, text: str, wav_path: str | Path) -> Speech:
        start = time.perf_counter()
        chunks, first = [], None
        for chunk in self.stream(text):
            first = time.perf_counter() - start if first is None else first
            chunks.append(chunk)
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        path = write_wav(wav_path, samples, self.sample_rate)
        first = time.perf_counter() - start if first is None else first
        return Speech(path, self.sample_rate, len(samples) / self.sample_rate, first, time.perf_counter() - start)
