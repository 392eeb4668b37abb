"""The published files load with `datasets`, with every column and type, lineage and ledger."""
import io
import json

import pyarrow.parquet as pq
import pytest
import soundfile as sf
from package_upstream import RESPONSES, TRAINED, instruction_text, response_text

from pipeline.ledger import errors_table
from pipeline.shards import Layout

EXPECTED = {
    "id": "string", "source": "string", "instruction": "string", "instruction_spoken": "string",
    "response": "string", "instruction_speaker": "string", "response_speaker": "string",
    "instruction_duration": "float32", "response_duration": "float32", "instruction_wer": "float32",
    "response_wer": "float32", "response_unit_frames": "int32", "response_units_per_second": "float32",
    "rewrite_model": "string", "rewrite_prompt_hash": "string", "respond_model": "string",
    "respond_prompt_hash": "string", "instruction_tts": "string", "response_tts": "string",
    "asr_model": "string", "units_model": "string", "config_fingerprint": "string",
    "meaning_similarity": "float32", "meaning_judge": "int8", "answer_similarity": "float32", "answer_judge": "int8",
    **{f"{side}_dnsmos_{m}": "float32" for side in ("instruction", "response") for m in ("p808", "sig", "bak", "ovrl")},
}


@pytest.fixture(scope="module")
def dataset(package_run, tmp_path_factory):
    """Every published file read as plain Parquet: the files' own metadata must declare the features."""
    from datasets import load_dataset

    root, _ = package_run
    files = sorted(str(p) for p in (root / "data").glob("*.parquet"))
    return load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path_factory.mktemp("hf")))


def test_published_file_names(package_run):
    """p3's id hash puts it in test at the default fractions; validation is empty and has no file."""
    root, _ = package_run
    assert sorted(p.name for p in (root / "data").glob("*")) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet"]
    assert not (root / "train").exists()


def test_every_column_and_type(dataset):
    from datasets import Audio, List, Value

    features = dataset.features
    assert set(features) == set(EXPECTED) | {"instruction_audio", "response_audio", "response_units"}
    for name, dtype in EXPECTED.items():
        assert features[name] == Value(dtype), name
    assert features["response_units"] == List(Value("int16"))
    for name in ("instruction_audio", "response_audio"):
        assert isinstance(features[name], Audio) and features[name].decode is False
    assert sorted(dataset["id"]) == sorted(TRAINED)


def test_row_contents(dataset):
    for row in dataset:
        assert row["instruction_spoken"] == instruction_text(row["id"])
        assert row["instruction"] == instruction_text(row["id"]) + " (original)"
        assert row["response"] == response_text(row["id"])
        for side in ("instruction", "response"):
            data = row[f"{side}_audio"]["bytes"]
            assert data[:4] == b"fLaC"
            clip, rate = sf.read(io.BytesIO(data))
            assert rate == 16000 and clip.ndim == 1
            assert row[f"{side}_duration"] == pytest.approx(len(clip) / rate, abs=1e-3)
        units = row["response_units"]
        assert units and all(0 <= u < 6 for u in units)
        assert row["response_units_per_second"] == pytest.approx(len(units) / row["response_duration"], rel=1e-3)
        assert row["response_wer"] == pytest.approx(0.05) and row["instruction_wer"] == pytest.approx(0.1)
    assert set(RESPONSES) == set(TRAINED)


def test_resampled_response_matches_the_units_stage(package_run, dataset):
    root, _ = package_run
    units = {r["id"]: r for i in (0, 1) for r in pq.read_table(Layout(root).shard("units", i)).to_pylist()}
    for row in dataset:
        assert row["response_units"] == units[row["id"]]["units"]
        assert row["response_unit_frames"] == units[row["id"]]["unit_frames"]


def test_lineage_columns(package_run, dataset):
    root, _ = package_run
    fingerprints = {i: json.loads(Layout(root).shard_record("package", i).read_text())["fingerprint"] for i in (0, 1)}
    for row in dataset:
        assert row["rewrite_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct@q4_1"
        assert row["respond_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert (row["rewrite_prompt_hash"], row["respond_prompt_hash"]) == ("abc123", "def456")
        assert row["instruction_tts"] == row["response_tts"] == "piper-tts 1.8.0, en_US-joe-medium.onnx"
        assert row["asr_model"] == "faster-whisper 1.2.1, tiny.en"
        assert "random weights" in row["units_model"] and "layer 11" in row["units_model"]
        assert row["config_fingerprint"] == fingerprints[0 if row["id"] != "p3" else 1]


def test_bad_rows_are_ledgered_with_a_reason(package_run):
    root, _ = package_run
    errors = {r["id"]: (r["reason"], r["detail"]) for r in errors_table(Layout(root), "package").to_pylist()}
    assert {k: v[0] for k, v in errors.items()} == {
        "bad_inst": "corrupt_instruction_audio", "long_inst": "instruction_too_long",
        "empty_inst": "empty_instruction_audio"}
    assert "max=30.0" in errors["long_inst"][1]
