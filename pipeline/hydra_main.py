"""Hydra entry point, for multirun launchers: a Slurm job array over shard ranges, for example

    python -m pipeline.hydra_main -m executor=slurm data_root=/shared/run stages.only=[rewrite] \\
        'stages.shards=[0,50],[50,100],[100,150],[150,200]'

Each job of the sweep is one `build` over its slice of shards (docs/distributed.md). Everyday
single runs use `python -m pipeline build`; this entry point exists because Hydra's launchers
need a `@hydra.main` function.
"""
from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig

from pipeline.cli import cmd_build
from pipeline.config import validate


@hydra.main(config_path="pkg://conf", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    run = validate(cfg)
    code = cmd_build(run)
    if code:  # an exception marks the job (and so the multirun) as failed
        raise RuntimeError(f"build into {run.context['data_root']} failed (exit code {code}); see its log")


if __name__ == "__main__":
    main()
