"""The dataset card, its plots and the drops accounting, generated from the ledger."""
import json

import yaml
from package_upstream import TRAINED, build
from synthetic_upstream import write_stage

from pipeline.shards import Layout
from stages.package_card import drops
from stages.package_train import split_of

FRACTIONS = {"validation": 0.02, "test": 0.02}  # conf/stages/package.yaml's, which the fixture keeps


PIPELINE = ["ingest", "rewrite", "respond", "speak_instruction", "speak_response", "verify_instruction",
            "verify_response", "units", "package"]


def card(root):
    text = (root / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def expected_sizes():
    sizes = {}
    for item in TRAINED:
        sizes[split_of(item, FRACTIONS)] = sizes.get(split_of(item, FRACTIONS), 0) + 1
    return sizes


def test_yaml_header_lists_the_non_empty_splits_decode_free(package_run):
    root, _ = package_run
    header, _ = card(root)
    sizes = expected_sizes()
    assert sizes == {"train": 3, "test": 1}  # the fixture's ids at the default fractions: validation is empty
    assert header["license"] == "cc-by-nc-4.0" and header["language"] == ["en"]
    assert header["configs"][0]["data_files"] == [{"split": s, "path": f"data/{s}-*.parquet"} for s in sizes]
    splits = header["dataset_info"]["splits"]
    assert {s["name"]: s["num_examples"] for s in splits} == sizes
    assert all(s["num_bytes"] > 0 for s in splits)
    features = {f["name"]: f for f in header["dataset_info"]["features"]}
    assert list(features)[:6] == ["id", "source", "instruction", "instruction_spoken", "response", "instruction_audio"]
    for name in ("instruction_audio", "response_audio"):
        assert features[name]["dtype"] == {"audio": {"sampling_rate": 16000, "decode": False}}


def test_splits_section_counts_and_names_the_empty_split(package_run):
    root, _ = package_run
    _, body = card(root)
    assert "| train | 3 | 75.0% | 1 |" in body and "| test | 1 | 25.0% | 1 |" in body
    assert "| validation | 0 | | empty: not published |" in body
    assert "Empty in this build: validation (no item fell in it)." in body
    assert "Audio(decode=False)" in body and "stages.loading.load(data_root)" in body


def test_table_one_plots_and_random_weights_note(package_run):
    root, _ = package_run
    _, body = card(root)
    assert "| response units, mean per response |" in body and "| 553.6 |" in body
    assert "Units from random weights" in body
    for name in ("durations.png", "units_per_second.png", "wer.png"):
        assert f"](plots/{name})" in body
        assert (root / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| units | 7 | 0 | hubert: hubert-base random weights (seed 7)" in body


def test_exports_are_listed_one_line_each(package_run):
    root, _ = package_run
    _, body = card(root)
    assert "## Exports" in body
    assert "- `llama_omni`: `export/llama_omni" in body


def test_drops_per_stage_and_reason(package_run):
    root, _ = package_run
    _, body = card(root)
    for line in ("| ingest | empty_instruction | 1 |", "| rewrite | looks_like_refusal | 1 |",
                 "| verify_response | wer_too_high | 1 |", "| package | instruction_too_long | 1 |",
                 "| (unknown) | missing_upstream: no ledger entry | 1 |",
                 "| **total** | 11 read by ingest - 4 published | **7** |"):
        assert line in body
    drops = json.loads((Layout(root).manifest_dir("package") / "drops.json").read_text())
    assert drops["missing_upstream_unledgered"] == ["ghost"]
    assert {"stage": "package", "reason": "corrupt_instruction_audio", "items": 1} in drops["dropped"]
    assert (drops["read"], drops["kept"], drops["lost"], drops["also_ledgered"]) == (11, 4, 7, [])


def test_an_item_ledgered_twice_is_counted_once(tmp_path):
    """b fails verify on both sides, c is ledgered again downstream: the table still adds up."""
    ids = ["a", "b", "c", "d", "e"]
    write_stage(tmp_path, "ingest", "ingest", [[{"id": i, "source": "s", "instruction": i, "context": "",
                                                 "prompt": i, "reference_response": ""} for i in ids]],
                errors=[[{"id": "x", "reason": "bad_record"}, {"id": "a", "reason": "duplicate_id"}]])
    ledger = {"rewrite": [("e", "looks_like_refusal")], "speak_instruction": [("c", "tts_failed")],
              "verify_instruction": [("b", "wer_too_high")], "verify_response": [("b", "wer_too_high")],
              "package": [("c", "corrupt_instruction_audio")]}
    kinds = {"rewrite": "rewrite", "speak_instruction": "speak", "verify_instruction": "verify",
             "verify_response": "verify", "package": "verify"}
    for stage, failures in ledger.items():
        write_stage(tmp_path, stage, kinds[stage], [[]], errors=[[{"id": i, "reason": r} for i, r in failures]])
    account = drops(Layout(tmp_path), {"a"}, PIPELINE)
    assert account.dropped == [("ingest", "bad_record", 1), ("ingest", "duplicate_id", 1),
                               ("rewrite", "looks_like_refusal", 1), ("speak_instruction", "tts_failed", 1),
                               ("verify_instruction", "wer_too_high", 1)]
    assert account.also == [("verify_response", "wer_too_high", 1), ("package", "corrupt_instruction_audio", 1)]
    assert account.unaccounted == ["d"]
    assert account.total == account.read - account.kept == 7 - 1


def test_rerun_is_a_no_op_with_identical_outputs(package_run):
    root, _ = package_run
    before = {p: p.read_bytes() for p in [root / "README.md", *sorted((root / "plots").glob("*.png")),
                                          *sorted((root / "data").glob("*.parquet")),
                                          *(p for p in sorted((root / "export").rglob("*")) if p.is_file())]}
    inodes = {p.name: p.stat().st_ino for p in (root / "data").glob("*.parquet")}
    card_written = [p.stat().st_mtime_ns for p in [root / "README.md", *sorted((root / "plots").glob("*.png"))]]
    summaries = build(root)
    assert [s["shards_run"] for s in summaries] == [0, 0]
    assert {p: p.read_bytes() for p in before} == before
    assert {p.name: p.stat().st_ino for p in (root / "data").glob("*.parquet")} == inodes  # not rewritten
    # the card and plots are a step of their own: skipped, not rewritten, when nothing they show changed
    assert [p.stat().st_mtime_ns for p in [root / "README.md", *sorted((root / "plots").glob("*.png"))]] == card_written
