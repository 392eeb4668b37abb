"""The Slurm layout through submitit's local mode: a job array over shard ranges, then a full run."""
import os
import subprocess
import sys
from pathlib import Path

from executor_helpers import ledger, output_hashes

from pipeline.cli import load_config
from pipeline.runner import Runner

REPO = Path(__file__).resolve().parents[2]
COMMON = ["stages.only=[ingest]", "shard_size=10", "progress=false"]


def test_a_job_array_over_shard_ranges_builds_what_one_local_run_builds(tmp_path):
    Runner(load_config([f"data_root={tmp_path / 'local'}", *COMMON])).build()

    array = tmp_path / "array"
    command = [sys.executable, "-m", "pipeline.hydra_main", "-m", "executor=slurm_local",
               f"data_root={array}", *COMMON, "stages.shards=[0,2],[2,5]"]
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "#1 : " in done.stdout  # two jobs of one array
    jobs = sorted(p.name for p in (array / "logs" / "slurm").glob("*/.submitit/*[0-9]") if p.is_dir())
    assert len(jobs) == 2, jobs

    assert output_hashes(array) == output_hashes(tmp_path / "local")
    assert ledger(array) == ledger(tmp_path / "local")
    [summary] = Runner(load_config([f"data_root={array}", *COMMON])).build()  # finalizes; runs nothing
    assert (summary["shards_run"], summary["shards_skipped"]) == (0, 5)
