"""Wake phrase spotting with pocketsphinx keyword search over 100 ms chunks of 16 kHz audio."""

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from qwenkit.apps.car.voice.audio import ASR_RATE, load_audio, to_pcm16
from qwenkit.apps.car.voice.extras import require
from qwenkit.errors import InvalidRequestError

FRAME_S = 0.01  # pocketsphinx's default 100 frames a second


class WakeWord:
    """Spots `phrase` in a stream; `kws_threshold` trades misses (higher) for false alarms (lower)."""

    def __init__(self, phrase: str = "hey car", kws_threshold: float = 1e-8, chunk_s: float = 0.1):
        ps = require("pocketsphinx", "The wake word")
        self.phrase, self.chunk_s = phrase.lower().strip(), chunk_s
        self.decoder = ps.Decoder(keyphrase=self.phrase, kws_threshold=kws_threshold, loglevel="FATAL")
        unknown = [w for w in self.phrase.split() if self.decoder.lookup_word(w) is None]
        if unknown:
            raise InvalidRequestError("phrase", f"{', '.join(unknown)} not in the pocketsphinx dictionary; "
                                      "pick a wake phrase of common English words")

    def listen(self, chunks: Iterable[bytes]) -> float | None:
        """Feeds 16 kHz 16-bit PCM chunks until the phrase is heard; the time (s) at which it ends, or None."""
        self.decoder.start_utt()
        try:
            for chunk in chunks:
                self.decoder.process_raw(chunk, False, False)
                if self.decoder.hyp() is not None:
                    return (max(s.end_frame for s in self.decoder.seg()) + 1) * FRAME_S
            return None
        finally:
            self.decoder.end_utt()

    def detect(self, audio: str | Path | bytes | np.ndarray, sample_rate: int = ASR_RATE) -> float | None:
        """When the wake phrase ends in a WAV path, PCM bytes or float samples; None if it is not said."""
        pcm = to_pcm16(load_audio(audio, sample_rate))
        step = 2 * int(ASR_RATE * self.chunk_s)
        return self.listen(pcm[i : i + step] for i in range(0, len(pcm), step))
