"""Item failures land in the ledger and never stop a shard; infrastructure failures stop the run."""
import json

import pyarrow.parquet as pq
import pytest
from engine_run import build

from pipeline.errors import InfrastructureError, StageContractError
from pipeline.ledger import errors_table, stage_status
from pipeline.shards import Layout


def test_item_failures_go_to_the_ledger(tmp_path):
    stages = {"source": {"kind": "generated", "items": 250, "fail_every": 50}}
    build(tmp_path, stages=stages)
    layout = Layout(tmp_path)
    status = stage_status(layout, "source")
    assert status["items"] == 245 and status["errors"] == 5
    errors = errors_table(layout, "source").to_pylist()
    assert [e["id"] for e in errors] == [f"gen-{i:09d}" for i in (49, 99, 149, 199, 249)]
    assert {e["reason"] for e in errors} == {"generated_failure"}


def test_an_item_that_raises_is_isolated_and_its_shard_goes_on(tmp_path):
    stages = {
        "source": {"kind": "generated", "items": 100},
        "pass1": {"kind": "passthrough", "upstream": "source", "raise_on": "0000042"},
    }
    build(tmp_path, stages=stages)
    rows = pq.read_table(Layout(tmp_path).shard("pass1", 0)).num_rows
    assert rows == 99
    (error,) = errors_table(Layout(tmp_path), "pass1").to_pylist()
    assert error["id"] == "gen-000000042" and error["reason"] == "exception"
    assert "cannot handle" in error["detail"]


def test_engine_load_failure_stops_the_run_and_keeps_finished_shards(tmp_path):
    stages = {
        "source": {"kind": "generated", "items": 300},
        "pass1": {"kind": "passthrough", "upstream": "source", "broken_setup": True},
    }
    with pytest.raises(InfrastructureError, match="could not load its engine.*model file not found"):
        build(tmp_path, stages=stages)
    layout = Layout(tmp_path)
    records = sorted(layout.manifest_dir("source").glob("shard-*.json"))
    assert len(records) == 3
    for record in map(json.loads, (p.read_text() for p in records)):
        assert pq.read_table(tmp_path / record["path"]).num_rows == record["rows"]
    assert not list(layout.manifest_dir("pass1").glob("shard-*.json"))


def test_a_stage_that_loses_rows_is_a_contract_error(tmp_path, monkeypatch):
    from pipeline.testing import PassthroughStage

    monkeypatch.setattr(PassthroughStage, "process", lambda self, rows: rows[1:])
    stages = {"source": {"kind": "generated", "items": 10},
              "pass1": {"kind": "passthrough", "upstream": "source"}}
    with pytest.raises(StageContractError, match="one row or one failure per input row"):
        build(tmp_path, stages=stages)


class EngineDeadError(RuntimeError):
    """Named as vLLM's: an engine's own infrastructure error that no stage wrapped."""


def test_an_engines_own_infrastructure_error_stops_the_run_as_one(tmp_path, monkeypatch):
    from pipeline.testing import PassthroughStage

    def dead(self, rows):
        raise EngineDeadError("EngineCore encountered an issue")

    monkeypatch.setattr(PassthroughStage, "process", dead)
    stages = {"source": {"kind": "generated", "items": 50},
              "pass1": {"kind": "passthrough", "upstream": "source"}}
    with pytest.raises(InfrastructureError, match="EngineDeadError: EngineCore encountered an issue"):
        build(tmp_path, stages=stages)
    assert Layout(tmp_path).shard("source", 0).exists() and not Layout(tmp_path).shard("pass1", 0).exists()
