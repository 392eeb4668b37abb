"""Each speed option of the trainer gives the losses of the plain path (CPU, a few steps of each stage)."""

import pytest
import torch

from omni.metrics import read
from omni.train import train

STEPS = ["max_steps=3", "train.epochs=2", "data.shuffle_buffer=1", "checkpoint.enabled=false"]


def losses(run_dir):
    return [(int(r["stage"]), float(r["loss"])) for r in read(run_dir) if r["split"] == "train"]


@pytest.fixture(scope="module")
def plain(mixed_data, omni_cfg):
    return losses(train(omni_cfg(mixed_data, "run_name=plain", *STEPS)))


# compile: stage 1 only (compiling on a CPU costs about half a minute per stage; the speech decoder's
# layers are compiled the same way)
@pytest.mark.parametrize("option, stages, tolerance", [("train.fused_adamw=true", "both", 1e-5),
                                                       ("train.compile=true", "1", 1e-3)])
def test_option_gives_the_plain_losses(option, stages, tolerance, plain, mixed_data, omni_cfg, monkeypatch):
    made = []

    class RecordingAdamW(torch.optim.AdamW):
        def __init__(self, *args, **kwargs):
            made.append(kwargs.get("fused"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", RecordingAdamW)
    torch._dynamo.reset()
    before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    name = option.split("=")[0].rsplit(".", 1)[1]
    got = losses(train(omni_cfg(mixed_data, f"run_name={name}", f"stage={stages}", *STEPS, option)))
    expected = [(s, v) for s, v in plain if stages == "both" or str(s) == stages]
    assert [s for s, _ in got] == [s for s, _ in expected] and len(plain) == 6
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=tolerance, abs=tolerance)
    if option.startswith("train.compile"):  # the layers really ran compiled
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > before
    else:  # and the fused kernel was really asked for, in both stages
        assert made == [True, True]
