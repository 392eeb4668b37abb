"""Two CPU ranks under torchrun (gloo): DDP and FSDP2 train like one process with gradient
accumulation, and a rank whose micro-batch lost every item while loading does not hang the others."""

import subprocess
import sys

import pytest

from omni.metrics import read
from omni.synthetic import make_rows, write_shards
from omni.train import train

# shuffle_buffer=1 keeps file order: item 3 (corrupt audio) is rank 1's micro-batch of step 2.
COMMON = ["data.shuffle_buffer=1", "train.epochs=1"]


@pytest.fixture(scope="module")
def data_with_a_corrupt_item(tmp_path_factory):
    root = tmp_path_factory.mktemp("omni-ddp")
    rows = make_rows(4, seed=5)
    rows[3]["instruction_audio"] = {"bytes": b"not audio", "path": "broken.flac"}
    write_shards(root, rows, shards=1)
    return root


def _losses(run_dir, stage):
    return {int(r["step"]): float(r["loss"]) for r in read(run_dir) if r["split"] == "train" and int(r["stage"]) == stage}


@pytest.mark.parametrize("stage, fsdp", [(1, False), (1, True), (2, False)])
def test_two_ranks_match_one_process_and_survive_an_empty_micro_batch(data_with_a_corrupt_item, omni_cfg,
                                                                     fast_overrides, stage, fsdp):
    root = data_with_a_corrupt_item
    overrides = [f"data_root={root}", *fast_overrides, *COMMON, f"stage={stage}", f"train.fsdp={str(fsdp).lower()}"]
    # one process, micro-batches of 1 accumulated to the global batch of 2
    single = train(omni_cfg(root, *COMMON, f"stage={stage}", f"run_name=single{stage}"))
    run_name = f"ranks{stage}{'fsdp' if fsdp else 'ddp'}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "omni.train", *overrides, f"run_name={run_name}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # a hang fails here
    assert done.returncode == 0, done.stderr[-3000:]
    assert "zero-weighted repeat" in done.stdout + done.stderr
    assert "dropped while loading: bad_audio=1" in done.stdout + done.stderr  # summed over ranks
    one, two = _losses(single, stage), _losses(root / "runs" / run_name, stage)
    assert sorted(one) == sorted(two) == [1, 2]
    for step in (1, 2):
        assert two[step] == pytest.approx(one[step], rel=1e-4), step
