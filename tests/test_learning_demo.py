"""The local training profile visibly learns: trained on the shared test build (the local profile's
settings; the batch shrinks to the few items kept), it gives back each item's response from the
item's instruction audio (text WER <= 0.3) with a non-empty unit sequence; the evaluation harness
reports it, and `omni.infer` writes the spoken answer as a 16 kHz wav."""

import glob

import pyarrow.parquet as pq
import pytest
import soundfile as sf

from omni.config import load_config
from omni.evaluate import evaluate
from omni.infer import main as infer_main
from omni.train import train


@pytest.fixture(scope="module")
def demo(local_build, tmp_path_factory):
    root, _ = local_build
    rows = pq.read_table(glob.glob(str(root / "data" / "train-*.parquet")),
                         columns=["id", "response", "instruction_audio"]).to_pylist()
    assert rows, "the test build kept no items"
    batch = min(4, len(rows))
    runs = tmp_path_factory.mktemp("demo-runs")
    overrides = [f"data_root={root}", f"runs_dir={runs}", f"train.batch_size={batch}",
                 f"train.micro_batch_size={batch}", "log.tensorboard=false"]
    train(load_config(overrides))
    return root, rows, overrides, tmp_path_factory.mktemp("demo-out")


def test_the_trained_model_gives_back_each_items_response(demo):
    root, rows, overrides, out = demo
    report = evaluate(load_config([*overrides, "evaluate.judge=null", f"evaluate.output_dir={out}"]))
    assert report["split"] == "train" and report["items"] == len(rows)
    [column] = report["checkpoints"]
    assert column["stage"] == 2 and column["vocoder"] == "random weights"
    assert column["summary"]["reference_wer"]["mean"] <= 0.3, [(r["text"], r["reference"]) for r in column["items"]]
    for record in column["items"]:
        assert record["units"] and all(0 <= u < 1000 for u in record["units"])
        assert record["speech_seconds"] > 0 and record["first_audio_s"] is not None
        assert "transcript" in record and record["failures"] == []
    table = (out / "eval" / f"{report['name']}.md").read_text()
    assert "text WER % against the dataset's answer" in table and "training items" in table


def test_infer_prints_the_learned_answer_and_writes_its_speech(demo, tmp_path, capsys):
    root, rows, overrides, _ = demo
    question, wav = tmp_path / "question.flac", tmp_path / "answer.wav"
    question.write_bytes(rows[0]["instruction_audio"]["bytes"])
    infer_main([*overrides, f"audio={question}", f"output={wav}"])
    printed = capsys.readouterr().out.splitlines()
    text = next(line for line in printed if line.startswith("text: "))[len("text: "):]
    units = next(line for line in printed if line.startswith("units: ")).split()[1:]
    assert any(line.startswith("first audio chunk after ") for line in printed)
    assert text.split()[:3] == rows[0]["response"].split()[:3] and units
    speech, rate = sf.read(wav)
    assert rate == 16000 and len(speech) > 0
