"""Test configs with any number of units nodes (each its own name and tokenizer) over placeholder
upstream stages, and shard reading by node name."""
from __future__ import annotations

import pyarrow.parquet as pq
from omegaconf import OmegaConf
from synthetic_upstream import UPSTREAM

from pipeline.config import validate
from pipeline.shards import Layout


def nodes_config(root, nodes: dict[str, dict], extra_upstream: tuple[str, ...] = (), seed: int = 7):
    """A RunConfig running only `nodes` (name -> units settings); the upstream stages (those of
    the default recipe plus `extra_upstream`) are placeholders already on disk."""
    stages: dict = {"ingest": {"kind": "generated"}}
    stages.update({name: {"kind": "passthrough", "upstream": "ingest"} for name in [*UPSTREAM[1:], *extra_upstream]})
    stages.update({name: {"kind": "units", "device": "cpu", **settings} for name, settings in nodes.items()})
    cfg = {"profile": "test", "data_root": str(root), "shard_size": 100, "seed": seed,
           "model_cache": str(root) + "/models", "progress": False, "stages": {**stages, "only": list(nodes)}}
    return validate(OmegaConf.create(cfg))


def rows(root, stage: str) -> dict[str, dict]:
    """Every row of a stage's shards, by id."""
    layout, out, shard = Layout(root), {}, 0
    while layout.shard(stage, shard).exists():
        out.update({r["id"]: r for r in pq.read_table(layout.shard(stage, shard)).to_pylist()})
        shard += 1
    return out
