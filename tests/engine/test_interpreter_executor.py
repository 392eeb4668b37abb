"""A stage's `python:` runs its shards in worker processes of that interpreter: same shards, same
ledger, failures isolated in the child, a dead interpreter stops the run, a bad path is a user error."""
import json
import sys

import pytest
from engine_run import build

from pipeline.errors import ConfigError, InfrastructureError
from pipeline.ledger import errors_table
from pipeline.shards import Layout


def stages(python=None, workers=1, **pass1):
    return {
        "source": {"kind": "generated", "items": 250},
        "pass1": {"kind": "passthrough", "upstream": "source", "suffix": "!", "python": python,
                  "workers": workers, **pass1},
    }


def shard_records(root, stage="pass1"):
    records = [json.loads(p.read_text()) for p in sorted(Layout(root).manifest_dir(stage).glob("shard-*.json"))]
    return [{k: r[k] for k in ("shard", "rows", "errors", "sha256", "fingerprint", "settings")} for r in records]


def test_shards_from_another_interpreter_equal_the_in_process_ones(tmp_path):
    build(tmp_path / "here", shard_size=100, stages=stages(raise_on="0000042"))
    build(tmp_path / "there", shard_size=100, stages=stages(sys.executable, workers=2, raise_on="0000042"))
    assert shard_records(tmp_path / "there") == shard_records(tmp_path / "here")
    assert len(shard_records(tmp_path / "there")) == 3
    (error,) = errors_table(Layout(tmp_path / "there"), "pass1").to_pylist()
    assert error["id"] == "gen-000000042" and "cannot handle" in error["detail"]


def test_an_engine_that_cannot_load_in_the_child_stops_the_run(tmp_path):
    with pytest.raises(InfrastructureError, match="could not load its engine"):
        build(tmp_path, shard_size=100, stages=stages(sys.executable, broken_setup=True))
    assert Layout(tmp_path).shard("source", 2).exists()  # the stages before it are kept


def test_an_interpreter_that_dies_stops_the_run_with_its_exit_code(tmp_path):
    dying = tmp_path / "python-that-dies"
    dying.write_text("#!/bin/sh\nexit 3\n")
    dying.chmod(0o755)
    with pytest.raises(InfrastructureError, match="exited with code 3"):
        build(tmp_path / "root", stages=stages(str(dying)))


def test_a_missing_interpreter_is_a_user_error_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="stages.pass1.python: /no/such/python is not an executable"):
        build(tmp_path, stages=stages("/no/such/python"))
    assert not Layout(tmp_path).shard("source", 0).exists()
