"""Mono float32 audio: WAV files, resampling to 16 kHz, and speech bounds by frame energy."""

import wave
from pathlib import Path

import numpy as np

from qwenkit.errors import InvalidRequestError

ASR_RATE = 16_000


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Reads a PCM WAV (8/16/32-bit) into mono float32 samples in [-1, 1]."""
    try:
        with wave.open(str(path), "rb") as f:
            width, channels, rate = f.getsampwidth(), f.getnchannels(), f.getframerate()
            data = f.readframes(f.getnframes())
    except (wave.Error, EOFError) as e:
        raise InvalidRequestError(str(path), f"not a PCM WAV file ({e})") from e
    if width == 1:
        samples = (np.frombuffer(data, np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        dtype = np.int16 if width == 2 else np.int32
        samples = np.frombuffer(data, dtype).astype(np.float32) / np.iinfo(dtype).max
    else:
        raise InvalidRequestError(str(path), f"{8 * width}-bit samples are not supported (use 16-bit PCM)")
    return samples.reshape(-1, channels).mean(axis=1), rate


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Writes mono float samples as a 16-bit PCM WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(to_pcm16(samples))
    return path


def to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def from_pcm16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, "<i2").astype(np.float32) / 32767


def resample(samples: np.ndarray, rate: int, target: int = ASR_RATE) -> np.ndarray:
    """Band-limited resampling through the FFT (drops content above the new Nyquist frequency)."""
    samples = np.asarray(samples, np.float32)
    if rate == target or len(samples) == 0:
        return samples
    n = max(1, round(len(samples) * target / rate))
    spectrum = np.fft.rfft(samples)
    kept = np.zeros(n // 2 + 1, spectrum.dtype)
    m = min(len(spectrum), len(kept))
    kept[:m] = spectrum[:m]
    return (np.fft.irfft(kept, n) * (n / len(samples))).astype(np.float32)


def load_audio(source: str | Path | bytes | np.ndarray, sample_rate: int = ASR_RATE) -> np.ndarray:
    """A WAV path, 16-bit PCM bytes or float samples at `sample_rate`, as float32 at 16 kHz."""
    if isinstance(source, str | Path):
        samples, sample_rate = read_wav(source)
    elif isinstance(source, bytes | bytearray | memoryview):
        samples = from_pcm16(bytes(source))
    else:
        samples = np.asarray(source, np.float32)
    return resample(samples, sample_rate)


def frame_db(samples: np.ndarray, sample_rate: int, frame_s: float = 0.02) -> np.ndarray:
    """Energy of consecutive frames in dB relative to full scale."""
    size = max(1, int(sample_rate * frame_s))
    count = len(samples) // size
    frames = np.asarray(samples[: count * size], np.float32).reshape(count, size)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)


def speech_bounds(samples: np.ndarray, sample_rate: int, threshold_db: float = -40.0,
                  hangover_s: float = 0.6, frame_s: float = 0.02) -> tuple[float, float] | None:
    """(start, end) in seconds of the first stretch of speech, ended by `hangover_s` of silence; None if silent.

    The threshold is relative to the loudest frame, so it follows the input level.
    """
    energy = frame_db(samples, sample_rate, frame_s)
    if len(energy) == 0 or energy.max() < -70:
        return None
    loud = np.flatnonzero(energy > max(energy.max() + threshold_db, -70))
    gaps = np.flatnonzero(np.diff(loud) * frame_s > hangover_s)
    last = loud[gaps[0]] if len(gaps) else loud[-1]
    return loud[0] * frame_s, (last + 1) * frame_s


def trim_silence(samples: np.ndarray, sample_rate: int, pad_s: float = 0.1, **bounds) -> np.ndarray:
    """The first stretch of speech with `pad_s` of context on each side; empty if there is none."""
    found = speech_bounds(samples, sample_rate, **bounds)
    if found is None:
        return samples[:0]
    start, end = (max(0, int((t + d) * sample_rate)) for t, d in zip(found, (-pad_s, pad_s)))
    return samples[start:end]
