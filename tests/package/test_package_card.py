"""The dataset card, its plots and the drops accounting, generated from the ledger."""
import json

import yaml
from package_upstream import TRAINED, build

from pipeline.shards import Layout


def card(root):
    text = (root / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def test_yaml_header_describes_the_training_split(package_run):
    root, _ = package_run
    header, _ = card(root)
    assert header["license"] == "cc-by-nc-4.0" and header["language"] == ["en"]
    assert header["configs"][0]["data_files"][0] == {"split": "train", "path": "train/train-*.parquet"}
    assert header["dataset_info"]["splits"][0]["num_examples"] == len(TRAINED)
    names = [f["name"] for f in header["dataset_info"]["features"]]
    assert names[:6] == ["id", "source", "instruction", "instruction_spoken", "response", "instruction_audio"]


def test_table_one_plots_and_random_weights_note(package_run):
    root, _ = package_run
    _, body = card(root)
    assert "| response units, mean per response |" in body and "| 553.6 |" in body
    assert "Units from random weights" in body
    for name in ("durations.png", "units_per_second.png", "wer.png"):
        assert f"](plots/{name})" in body
        assert (root / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| units | 7 | 0 | hubert: hubert-base random weights (seed 7)" in body


def test_drops_per_stage_and_reason(package_run):
    root, _ = package_run
    _, body = card(root)
    for line in ("| ingest | empty_instruction | 1 |", "| rewrite | looks_like_refusal | 1 |",
                 "| verify_response | wer_too_high | 1 |", "| package | instruction_too_long | 1 |",
                 "| (unknown) | missing_upstream: no ledger entry | 1 |"):
        assert line in body
    drops = json.loads((Layout(root).manifest_dir("package") / "drops.json").read_text())
    assert drops["missing_upstream_unledgered"] == ["ghost"]
    assert {"stage": "package", "reason": "corrupt_instruction_audio", "items": 1} in drops["dropped"]


def test_rerun_is_a_no_op_with_identical_outputs(package_run):
    root, _ = package_run
    before = {p: p.read_bytes() for p in [root / "README.md", *sorted((root / "plots").glob("*.png")),
                                          root / "export" / "llama_omni" / "instructs2s.json"]}
    inodes = {p.name: p.stat().st_ino for p in (root / "train").glob("*.parquet")}
    summaries = build(root)
    assert [s["shards_run"] for s in summaries] == [0, 0]
    assert {p: p.read_bytes() for p in before} == before
    assert {p.name: p.stat().st_ino for p in (root / "train").glob("*.parquet")} == inodes
    assert (root / "train" / "train-00000-of-00002.parquet").stat().st_ino == \
        Layout(root).shard("package", 0).stat().st_ino  # a hard link, not a copy
