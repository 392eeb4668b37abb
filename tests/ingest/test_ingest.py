"""The ingest stage on the bundled sample and on local files in each supported format."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import load_config
from pipeline.ledger import errors_table, stage_status
from pipeline.runner import Runner
from pipeline.shards import Layout


def ingest(tmp_path, *overrides):
    run = load_config([f"data_root={tmp_path}", "stages.only=[ingest]", "progress=false", *overrides])
    Runner(run).build()
    layout = Layout(tmp_path)
    rows = pq.read_table(layout.shard("ingest", 0)).to_pylist()
    errors = {e["id"]: e for e in errors_table(layout, "ingest").to_pylist()}
    return rows, errors


def test_sample_items_are_ingested_and_bad_ones_ledgered_with_reasons(tmp_path):
    rows, errors = ingest(tmp_path)
    assert len(rows) + len(errors) == 47
    assert len(rows) >= 30
    by_id = {r["id"]: r for r in rows}
    assert by_id["alpaca-000001"]["prompt"] == "How many minutes are there in 3.5 hours?"
    assert by_id["ultrachat-1001"]["source"] == "ultrachat"
    merged = by_id["alpaca-000018"]
    assert merged["prompt"] == "Translate the sentence into French.\nThe weather is nice today."
    assert merged["context"] == "The weather is nice today."
    expected = {
        "alpaca-000006": "code", "alpaca-000009": "not_english", "alpaca-000010": "bad_record",
        "alpaca-000011": "duplicate_text", "alpaca-000012": "alpaca_input_dropped", "alpaca-000013": "math",
        "alpaca-000024": "bad_record", "ultrachat-1005": "code", "ultrachat-1009": "bad_record",
        "ultrachat-1015": "bad_record", "ultrachat#000017": "unreadable_record",
    }
    for item_id, reason in expected.items():
        assert errors[item_id]["reason"] == reason, (item_id, errors[item_id])
        assert errors[item_id]["detail"], "every drop says why"
    # The second record with id 1002 is a duplicate id: dropped, the first kept.
    assert by_id["ultrachat-1002"]["prompt"].startswith("What are some easy ways")
    assert "ultrachat-1002" in errors and errors["ultrachat-1002"]["reason"] == "duplicate_id"
    status = stage_status(Layout(tmp_path), "ingest")
    assert status["items"] == len(rows) and status["errors"] == len(errors)


def test_limit_and_input_policy_are_settings(tmp_path):
    rows, errors = ingest(tmp_path, "source.limit=20", "stages.ingest.alpaca_input=drop_nonempty")
    assert len(rows) + len(errors) == 20
    assert errors["alpaca-000005"]["reason"] == "alpaca_input_dropped"


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_local_files_in_each_format(tmp_path, suffix):
    records = [{"instruction": f"Tell me a fact about the number {w}.", "input": "", "output": "ok"}
               for w in ("seven", "twelve", "forty")]
    path = tmp_path / f"alpaca{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(records))
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in records))
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    rows, errors = ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")
    assert [r["id"] for r in rows] == ["alpaca-000000", "alpaca-000001", "alpaca-000002"]
    assert not errors


def test_ultrachat_keeps_the_first_user_turn_only(tmp_path):
    path = tmp_path / "ultra.jsonl"
    path.write_text(json.dumps({"id": 7, "data": ["How do rainbows form?", "Light refracts.",
                                                  "And double rainbows?", "Two reflections."]}))
    rows, _ = ingest(tmp_path / "run", "source=ultrachat", f"source.path={path}")
    assert rows == [{"id": "ultrachat-7", "source": "ultrachat", "instruction": "How do rainbows form?",
                     "context": "", "prompt": "How do rainbows form?", "reference_response": "Light refracts.",
                     "prompt_raw": "How do rainbows form?"}]


def test_hub_source_unreachable_is_an_infrastructure_failure(tmp_path, monkeypatch):
    from pipeline.errors import InfrastructureError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = load_config([f"data_root={tmp_path}", "stages.only=[ingest]", "source=alpaca", "progress=false"])
    with pytest.raises(InfrastructureError, match="tatsu-lab/alpaca.*source.path"):
        Runner(run).build()
