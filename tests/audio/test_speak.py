"""speak with the real Piper joe voice and the real flite and Festival voices."""
import numpy as np
import pytest
from speech_helpers import FESTIVAL_SLT, JOE, KAL, SENTENCES, SLT, make_speak, needs_festival, needs_flite

from pipeline.errors import ItemFailure
from stages import audio
from stages.speak import SpeakSettings, SpeakStage


def rows(*texts):
    return [{"id": f"item-{i}", "instruction_spoken": t} for i, t in enumerate(texts)]


def test_piper_clip_is_16k_mono_flac_in_the_audio_struct(joe_speaker):
    [out] = joe_speaker.process(rows(SENTENCES[0]))
    assert out["audio"]["path"] == "item-0.flac" and out["audio"]["bytes"][:4] == b"fLaC"
    clip, rate = audio.decode(out["audio"]["bytes"])
    assert rate == out["sample_rate"] == 16000 and clip.ndim == 1
    assert out["duration"] == pytest.approx(len(clip) / rate)
    assert 2.0 < out["duration"] < 8.0
    assert np.max(np.abs(clip)) < 1.0
    assert (out["speaker"], out["engine"]) == ("piper:joe", "piper")


def test_native_rate_is_kept_when_asked():
    [out] = make_speak([JOE], sample_rate=None).process(rows("Hello there."))
    assert out["sample_rate"] == 22050


def test_voice_choice_is_seeded_by_item_id_and_recorded():
    settings = SpeakSettings(voices=[JOE, SLT, KAL])
    first = SpeakStage("s", settings, {"seed": 1234})
    again = SpeakStage("s", settings, {"seed": 1234})
    other_seed = SpeakStage("s", settings, {"seed": 99})
    ids = [f"id-{i}" for i in range(60)]
    picks = [first.pick_voice({"id": i})[0]["speaker"] for i in ids]
    assert picks == [again.pick_voice({"id": i})[0]["speaker"] for i in ids]
    assert picks != [other_seed.pick_voice({"id": i})[0]["speaker"] for i in ids]
    assert set(picks) == {"joe", "slt", "kal16"}


def test_voice_by_a_column_gives_every_turn_of_a_dialogue_one_voice():
    stage = SpeakStage("s", SpeakSettings(voices=[JOE, SLT, KAL], voice_by="dialogue_id"), {"seed": 1234})
    assert stage.input_columns() == {"rewrite": ["instruction_spoken", "dialogue_id"]}
    voices = {}
    for d in range(30):
        picks = {stage.pick_voice({"id": f"d{d}-t{t}", "dialogue_id": f"d{d}"})[0]["speaker"] for t in (1, 2, 3)}
        assert len(picks) == 1
        voices[d] = picks.pop()
    assert set(voices.values()) == {"joe", "slt", "kal16"}  # different across dialogues
    seeds = {stage.pick_voice({"id": f"d0-t{t}", "dialogue_id": "d0"})[1] for t in (1, 2, 3)}
    assert len(seeds) == 3  # each turn still has its own synthesis seed


def test_a_setting_at_its_default_leaves_the_fingerprint_of_older_builds_alone():
    from pipeline.fingerprint import output_settings

    assert "voice_by" not in output_settings(SpeakSettings(voices=[JOE]))
    assert output_settings(SpeakSettings(voices=[JOE], voice_by="dialogue_id"))["voice_by"] == "dialogue_id"


@needs_flite
def test_flite_voices_speak_and_share_one_engine():
    stage = make_speak([SLT, KAL])
    assert len(stage.engines) == 1
    outputs = stage.process(rows(*SENTENCES))
    assert all(o["engine"] == "flite" and o["duration"] > 1.5 for o in outputs)
    assert {o["speaker"] for o in outputs} <= {"flite:slt", "flite:kal16"}


def test_bad_items_are_failures_and_the_rest_are_spoken(joe_speaker):
    results = joe_speaker.process(rows(SENTENCES[1], "", "...", "a null \x00 byte", SENTENCES[2]))
    kinds = [r.reason if isinstance(r, ItemFailure) else "ok" for r in results]
    assert kinds == ["ok", "empty_text", "no_audio", "tts_failed", "ok"]
    assert "piper:joe" in results[3].detail


@needs_flite
def test_unknown_speaker_fails_at_load():
    with pytest.raises(ValueError, match="no voice"):
        make_speak([{"engine": "flite", "speaker": "nobody"}])


def test_missing_flite_binary_says_how_to_install():
    with pytest.raises(RuntimeError, match="apt-get install -y flite"):
        make_speak([{"engine": "flite", "speaker": "slt", "binary": "/nonexistent/flite"}])


@needs_festival
def test_festival_voice_speaks_the_same_bytes_twice_and_refuses_an_unknown_voice():
    stage = make_speak([FESTIVAL_SLT])
    first, again = stage.process(rows(SENTENCES[1])), stage.process(rows(SENTENCES[1]))
    assert first[0]["audio"]["bytes"] == again[0]["audio"]["bytes"]  # reruns rebuild identical shards
    assert (first[0]["speaker"], first[0]["engine"]) == ("festival:cmu_us_slt_arctic_hts", "festival")
    assert first[0]["sample_rate"] == 16000 and 2.0 < first[0]["duration"] < 8.0
    with pytest.raises(ValueError, match="no voice"):
        make_speak([{"engine": "festival", "speaker": "nobody"}])
    with pytest.raises(RuntimeError, match="SIOD ERROR"):  # text2wave exits 0 on an unknown voice
        next(iter(stage.engines.values())).synthesize("Hello.", "nobody", 0)


def test_missing_festival_binary_says_how_to_install():
    with pytest.raises(RuntimeError, match="apt-get install -y festival festvox-us-slt-hts"):
        make_speak([{**FESTIVAL_SLT, "binary": "/nonexistent/text2wave"}])
