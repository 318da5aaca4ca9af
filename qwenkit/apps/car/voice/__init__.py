"""Voice for the in-car assistant: wake word, speech recognition, speech synthesis and one spoken turn.

The engines are optional (pip install 'qwenkit[car]') and load when a class is first built.
"""

from qwenkit.apps.car.voice.asr import Transcriber, Transcript
from qwenkit.apps.car.voice.audio import load_audio, read_wav, resample, speech_bounds, trim_silence, write_wav
from qwenkit.apps.car.voice.extras import MissingExtraError
from qwenkit.apps.car.voice.names import find_places, fold, mentions
from qwenkit.apps.car.voice.pipeline import Reply, TurnResult, VoiceTurn
from qwenkit.apps.car.voice.tts import Speaker, Speech, split_sentences
from qwenkit.apps.car.voice.wake import WakeWord

__all__ = ["MissingExtraError", "Reply", "Speaker", "Speech", "Transcriber", "Transcript", "TurnResult", "VoiceTurn",
           "WakeWord", "find_places", "fold", "load_audio", "mentions", "read_wav", "resample", "speech_bounds",
           "split_sentences", "trim_silence", "write_wav"]
