"""Build a generated-source pipeline (engine-only stages); used by tests and as a subprocess."""
from __future__ import annotations

import sys

from omegaconf import OmegaConf

from pipeline.config import validate
from pipeline.runner import Runner


def engine_config(data_root, items=2000, shard_size=100, stages=None, only=None, **root):
    stages = stages or {
        "source": {"kind": "generated", "items": items},
        "pass1": {"kind": "passthrough", "upstream": "source"},
        "pass2": {"kind": "passthrough", "upstream": "pass1"},
    }
    cfg = {"profile": "test", "data_root": str(data_root), "shard_size": shard_size, "seed": 1,
           "model_cache": str(data_root) + "/models", "progress": False,
           "stages": {**stages, "only": only}, **root}
    return validate(OmegaConf.create(cfg))


def build(data_root, **kwargs):
    return Runner(engine_config(data_root, **kwargs)).build()


if __name__ == "__main__":
    build(sys.argv[1], items=int(sys.argv[2]), shard_size=int(sys.argv[3]))
