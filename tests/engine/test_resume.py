"""Resume: a killed build reruns to the same bytes; a rerun does nothing; changes rerun the right stages."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine_run import build, engine_config

from pipeline.runner import Runner

REPO = Path(__file__).resolve().parents[2]


def shard_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "stages").rglob("*.parquet"))}


def ran(summaries) -> dict[str, int]:
    return {s["stage"]: s["shards_run"] for s in summaries}


def test_rerun_does_no_work(tmp_path):
    first = build(tmp_path, items=500)
    assert ran(first) == {"source": 5, "pass1": 5, "pass2": 5}
    assert ran(build(tmp_path, items=500)) == {"source": 0, "pass1": 0, "pass2": 0}


def test_sigkill_mid_stage_then_rerun_gives_identical_shards(tmp_path):
    reference = tmp_path / "reference"
    build(reference, items=30000, shard_size=100)

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{Path(__file__).parent}"}
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "engine_run.py"), str(killed),
                             "30000", "100"], env=env, cwd=REPO)
    deadline = time.time() + 120
    marker_dir = killed / "manifests" / "pass1"
    while time.time() < deadline and len(list(marker_dir.glob("shard-*.json"))) < 5:
        assert proc.poll() is None, "the build finished before it could be killed; make it bigger"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(marker_dir.glob("shard-*.json")))
    assert 5 <= done_before < 300, "killed mid-stage"

    summaries = build(killed, items=30000, shard_size=100)
    assert ran(summaries)["source"] == 0
    assert ran(summaries)["pass1"] <= 300 - done_before + 1
    assert shard_hashes(killed) == shard_hashes(reference)
    assert not list(killed.rglob(".*.tmp-*"))


def test_changing_a_downstream_setting_reruns_only_it_and_dependents(tmp_path):
    stages = {
        "source": {"kind": "generated", "items": 300},
        "pass1": {"kind": "passthrough", "upstream": "source"},
        "pass2": {"kind": "passthrough", "upstream": "pass1"},
    }
    build(tmp_path, stages=stages)
    stages["pass2"]["suffix"] = "!"
    assert ran(build(tmp_path, stages=stages)) == {"source": 0, "pass1": 0, "pass2": 3}
    stages["pass1"]["suffix"] = "?"
    assert ran(build(tmp_path, stages=stages)) == {"source": 0, "pass1": 3, "pass2": 3}
    stages["pass1"]["workers"] = 2  # a runtime knob: output unchanged, nothing reruns
    assert ran(build(tmp_path, stages=stages)) == {"source": 0, "pass1": 0, "pass2": 0}


def test_a_smaller_rerun_removes_stale_shards(tmp_path):
    build(tmp_path, items=500)
    build(tmp_path, items=250)
    assert len(list((tmp_path / "stages" / "pass2").glob("*.parquet"))) == 3
    assert len(list((tmp_path / "manifests" / "pass2").glob("shard-*.json"))) == 3


def test_only_runs_the_named_stages(tmp_path):
    build(tmp_path, items=200)
    summaries = Runner(engine_config(tmp_path, items=200, only=["pass2"])).build()
    assert [s["stage"] for s in summaries] == ["pass2"]
