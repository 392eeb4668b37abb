"""Executor and shard-range settings: wrong values fail before any work; no cluster needed."""
import pytest
from executor_helpers import LOCAL, build, engine_stages, output_hashes

from pipeline.cli import load_config
from pipeline.config import ExecutorSettings
from pipeline.errors import ConfigError
from pipeline.executors.ray import RayExecutor, worker_resources, workers_that_fit
from pipeline.executors.ray_pool import WorkerResources


def test_stage_resources_are_checked_when_the_executor_is_made():
    with pytest.raises(ConfigError, match=r"stage_resources.rewrite: unknown keys \['num_gpu'\]"):
        RayExecutor(ExecutorSettings(name="ray", stage_resources={"rewrite": {"num_gpu": 4}}))
    with pytest.raises(ConfigError, match="workers"):
        RayExecutor(ExecutorSettings(name="ray", stage_resources={"rewrite": {"workers": 0}}))
    with pytest.raises(ConfigError, match="max_retries"):
        RayExecutor(ExecutorSettings(name="ray", max_retries=-1))
    assert worker_resources("speak", {}) == WorkerResources(num_cpus=1.0, num_gpus=0.0, workers=None)


def test_workers_fit_per_node_never_across_nodes():
    nodes = [{"Alive": True, "Resources": {"CPU": 96.0, "GPU": 8.0}},
             {"Alive": True, "Resources": {"CPU": 96.0, "GPU": 6.0}},
             {"Alive": False, "Resources": {"CPU": 96.0, "GPU": 8.0}}]
    assert workers_that_fit(WorkerResources(num_cpus=8, num_gpus=4), nodes) == 3  # 2 + 1, the dead node none
    assert workers_that_fit(WorkerResources(num_cpus=2, num_gpus=0.25), nodes) == 32 + 24  # GPU-bound
    assert workers_that_fit(WorkerResources(num_cpus=8, num_gpus=0.25), nodes) == 12 + 12  # CPU-bound
    assert workers_that_fit(WorkerResources(num_cpus=1, num_gpus=0), nodes) == 192
    assert workers_that_fit(WorkerResources(num_cpus=1, num_gpus=16), nodes) == 0


@pytest.mark.parametrize("executor", ["ray", "ray_gpu", "slurm", "slurm_local"])
def test_every_executor_config_composes_with_both_profiles(executor):
    for profile in ("local", "full"):
        run = load_config([f"executor={executor}", f"profile={profile}"])
        assert run.root.executor.name in ("ray", "local")
    gpu = load_config(["executor=ray_gpu", "profile=full"]).root.executor
    assert gpu.stage_resources["rewrite"]["num_gpus"] == 4  # follows the engine's tensor_parallel_size


@pytest.mark.parametrize("value", ["[3,3]", "[-1,2]", "[0]", "[0,1,2]", "[a,b]"])
def test_a_wrong_shard_range_is_a_config_error(value):
    with pytest.raises(ConfigError, match="stages.shards"):
        load_config([f"stages.shards={value}"])


def test_shard_slices_together_equal_one_full_run(tmp_path):
    stages = engine_stages(workers=1)
    build(tmp_path / "full", LOCAL, stages)
    sliced = tmp_path / "sliced"
    assert build(sliced, LOCAL, stages, shards=[0, 2]) == {"source": 2, "pass1": 2, "pass2": 2}
    assert not (sliced / "stages" / "pass2" / "shard-00002.parquet").exists()
    assert build(sliced, LOCAL, stages, shards=[2, 100]) == {"source": 4, "pass1": 4, "pass2": 4}
    assert output_hashes(sliced) == output_hashes(tmp_path / "full")
    assert build(sliced, LOCAL, stages) == {"source": 0, "pass1": 0, "pass2": 0}  # the closing full run
