"""executor=ray on a local Ray instance (2 CPUs): the local executor's bytes, resume across
executors, and a worker killed mid-shard costs a rerun of that shard, never a lost or doubled one."""
import os
import signal
import threading
import time

import psutil
import pyarrow.parquet as pq
import pytest
from executor_helpers import LOCAL, RAY, build, engine_stages, ledger, output_hashes
from executor_test_stages import KIND
from local_build import LOCAL_BUILD

from pipeline.cli import load_config
from pipeline.errors import InfrastructureError
from pipeline.runner import Runner

pytestmark = pytest.mark.usefixtures("ray_instance")


def test_ray_writes_the_same_shards_and_ledger_as_the_local_executor(tmp_path):
    # `workers` is a runtime knob: in-process locally, a pool of 2 (pass2: 4) actors on Ray.
    assert build(tmp_path / "local", LOCAL, engine_stages(workers=1)) == {"source": 6, "pass1": 6, "pass2": 6}
    ray = {**RAY, "stage_resources": {"pass2": {"workers": "auto", "num_cpus": 0.5}}}
    assert build(tmp_path / "ray", ray, engine_stages()) == {"source": 6, "pass1": 6, "pass2": 6}
    local_hashes = output_hashes(tmp_path / "local")
    assert len(local_hashes) == 36  # 3 stages x 6 shards, each with its errors file
    assert output_hashes(tmp_path / "ray") == local_hashes
    assert ledger(tmp_path / "ray") == ledger(tmp_path / "local")


def test_resume_and_fingerprints_are_shared_with_the_local_executor(tmp_path):
    stages = engine_stages(items=300, workers=1)
    build(tmp_path, LOCAL, stages)
    assert build(tmp_path, RAY, stages) == {"source": 0, "pass1": 0, "pass2": 0}
    (tmp_path / "manifests" / "pass2" / "shard-00001.json").unlink()
    assert build(tmp_path, RAY, stages) == {"source": 0, "pass1": 0, "pass2": 1}
    assert build(tmp_path, LOCAL, stages) == {"source": 0, "pass1": 0, "pass2": 0}


def test_the_ingest_stage_on_ray_matches_the_local_executor(tmp_path):
    def run(root, *executor):
        overrides = [f"data_root={root}", "stages.only=[ingest]", "shard_size=10", "progress=false",
                     "stages.ingest.workers=2", *executor]
        return Runner(load_config(overrides)).build()

    run(tmp_path / "local")
    [summary] = run(tmp_path / "ray", "executor=ray", "executor.num_cpus=2")
    assert summary["shards_run"] == summary["num_shards"] == 5
    assert output_hashes(tmp_path / "ray") == output_hashes(tmp_path / "local")
    assert ledger(tmp_path / "ray") == ledger(tmp_path / "local")


def is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_the_first_stalled_worker(signals, outcome):
    """Waits for a worker to report that it stalls mid-shard, SIGKILLs it, then lets retries pass."""
    attempts = signals / "attempts"
    deadline = time.time() + 120
    while time.time() < deadline:
        if attempts.exists() and attempts.read_text().strip():
            pid = int(attempts.read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            outcome["killed"] = pid
            while is_running(pid):
                time.sleep(0.02)
            (signals / "released").touch()
            return
        time.sleep(0.02)


def test_a_worker_killed_mid_shard_loses_and_duplicates_nothing(tmp_path):
    signals = tmp_path / "signals"
    signals.mkdir()
    build(tmp_path / "local", LOCAL, engine_stages(workers=1, raise_on=""))

    stalling = engine_stages(kind=KIND, signal_dir=str(signals), stall_on="gen-000000350", raise_on="")
    build(tmp_path / "ray", LOCAL, stalling, only=["source"])
    outcome = {}
    killer = threading.Thread(target=kill_the_first_stalled_worker, args=(signals, outcome))
    killer.start()
    try:
        ran = build(tmp_path / "ray", RAY, stalling, only=["pass1", "pass2"])
    finally:
        (signals / "released").touch()
        killer.join()

    attempts = [int(pid) for pid in (signals / "attempts").read_text().split()]
    assert attempts[0] == outcome["killed"]  # the worker that held shard 3 was killed mid-shard...
    assert len(attempts) == 2 and attempts[1] != attempts[0]  # ...and the shard ran once more, elsewhere
    assert ran == {"pass1": 6, "pass2": 6}
    assert output_hashes(tmp_path / "ray") == output_hashes(tmp_path / "local")
    ids = [i for p in sorted((tmp_path / "ray" / "stages" / "pass2").glob("*.parquet"))
           for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()]
    assert len(ids) == len(set(ids)) == sum(r["rows"] for k, r in ledger(tmp_path / "local").items()
                                              if "/pass2/" in k)
    assert not list((tmp_path / "ray").rglob(".*.tmp-*"))


def test_a_shard_whose_worker_always_dies_stops_the_run_after_max_retries(tmp_path):
    stages = engine_stages(items=300, kind=KIND, signal_dir=str(tmp_path), die_on="gen-000000150")
    build(tmp_path, LOCAL, stages, only=["source"])
    with pytest.raises(InfrastructureError, match=r"shard 1: its worker died 2 times"):
        build(tmp_path, {**RAY, "max_retries": 1}, stages, only=["pass1"])
    assert not (tmp_path / "manifests" / "pass1" / "shard-00001.json").exists()


def test_a_stage_that_cannot_load_stops_the_run_as_with_the_local_executor(tmp_path):
    stages = engine_stages(items=200, broken_setup=True)
    build(tmp_path, LOCAL, stages, only=["source"])
    with pytest.raises(InfrastructureError, match="could not load its engine"):
        build(tmp_path, RAY, stages, only=["pass1"])


@pytest.mark.nightly  # 2.5 min; make test runs the Ray executor on the engine-only stages above
def test_the_local_profile_build_on_ray_matches_the_local_executor(tmp_path, local_build):
    """Every real stage (vLLM, Piper/flite, Whisper, HuBERT, package): the same bytes on Ray as the
    shared local-executor build of the same config."""
    local_root, _ = local_build
    overrides = [f"data_root={tmp_path / 'ray'}", *LOCAL_BUILD, "executor=ray", "executor.num_cpus=2"]
    summaries = Runner(load_config(overrides)).build()
    assert [s["stage"] for s in summaries][-1] == "package"
    local_hashes = output_hashes(local_root)
    assert any(path.startswith("stages/units/") for path in local_hashes)
    assert output_hashes(tmp_path / "ray") == local_hashes
