"""verify with the real Whisper tiny.en on real Piper speech."""
import numpy as np
from speech_helpers import SENTENCES

from pipeline.errors import ItemFailure
from stages import audio
from stages.verify import VerifySettings, VerifyStage


def clip_row(item_id, text, clip_bytes):
    return {"id": item_id, "audio": {"bytes": clip_bytes, "path": f"{item_id}.flac"},
            "instruction_spoken": text}


def test_piper_speech_round_trips_with_low_wer(joe_speaker, verifier):
    spoken = joe_speaker.process([{"id": f"s{i}", "instruction_spoken": t} for i, t in enumerate(SENTENCES)])
    results = verifier.process([clip_row(o["id"], t, o["audio"]["bytes"]) for o, t in zip(spoken, SENTENCES)])
    assert not [r for r in results if isinstance(r, ItemFailure)], results
    assert np.mean([r["wer"] for r in results]) <= 0.1
    assert all(8 < r["chars_per_second"] < 25 for r in results)
    assert verifier.metrics["wer_items"] >= 3


def test_numbers_written_as_digits_by_whisper_are_not_errors(verifier):
    assert verifier.word_error_rate("It costs nine dollars, twenty five cents.", "It costs $9.25") == 0.0
    assert verifier.word_error_rate("colour", "color") == 0.0


def test_wrong_text_is_ledgered_with_the_measured_wer(joe_speaker, verifier):
    [spoken] = joe_speaker.process([{"id": "x", "instruction_spoken": SENTENCES[0]}])
    [result] = verifier.process([clip_row("x", "Completely different words about the ocean tides today.",
                                          spoken["audio"]["bytes"])])
    assert isinstance(result, ItemFailure) and result.reason == "wer_too_high"
    assert "wer=" in result.detail and "transcript=" in result.detail


def test_duration_and_speaking_rate_bounds_report_the_measured_value(verifier):
    short = audio.encode_flac(np.zeros(4000, dtype=np.float32), 16000)  # 0.25 s
    [too_short] = verifier.process([clip_row("a", "hi", short)])
    assert too_short.reason == "duration_out_of_bounds" and "duration=0.25s" in too_short.detail

    second = audio.encode_flac(np.zeros(16000, dtype=np.float32), 16000)  # 1 s for 80 chars
    [too_fast] = verifier.process([clip_row("b", "word " * 16, second)])
    assert too_fast.reason == "speaking_rate_out_of_bounds" and "chars_per_second=80.0" in too_fast.detail


def test_a_bound_set_to_null_is_not_checked(verifier):
    stage = VerifyStage("v", VerifySettings(min_duration_s=None, max_wer=None), {"seed": 1})
    stage.asr, stage.wer = verifier.asr, verifier.wer
    short = audio.encode_flac(np.zeros(4000, dtype=np.float32), 16000)
    [result] = stage.process([clip_row("a", "hi", short)])
    assert not isinstance(result, ItemFailure) and result["duration"] == 0.25


def test_batched_asr_gives_the_one_by_one_transcripts_and_scores(joe_speaker, verifier):
    spoken = joe_speaker.process([{"id": f"b{i}", "instruction_spoken": t} for i, t in enumerate(SENTENCES)])
    rows = [clip_row(o["id"], t, o["audio"]["bytes"]) for o, t in zip(spoken, SENTENCES)]
    rows.append(clip_row("silence", "Nothing here.", audio.encode_flac(np.zeros(16000, np.float32), 16000)))
    batched = VerifyStage("verify_instruction", VerifySettings(threads=2, asr_batch_size=4), {"seed": 1234})
    batched.setup()
    one_by_one = verifier.process(rows)
    together = batched.process(rows)
    assert [getattr(r, "reason", None) or r["transcript"] for r in together] == \
           [getattr(r, "reason", None) or r["transcript"] for r in one_by_one]
    assert batched.metrics["scores_computed"] == len(rows) and not batched.batched
    assert batched.scorers["asr"].identity["batch_size"] == 4  # cached apart from one-by-one transcripts
