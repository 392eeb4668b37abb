"""Columns the package stage reads by item id, beside the engine's join.

The engine joins a stage's inputs into one dict per row, so two inputs with the same column
name (speak_instruction.audio and speak_response.audio; verify_*.wer) cannot both arrive.
The package stage takes the instruction side from the join and reads the response side here,
from the same shard index (an item keeps its shard index through every stage). The response
stages are still declared inputs, so fingerprints and the inner join cover them.
"""
from __future__ import annotations

import json

import pyarrow.parquet as pq

from pipeline.shards import Layout


class ShardColumns:
    """Reads `columns` of one upstream stage for given ids, locating their shard once."""

    def __init__(self, layout: Layout, stage: str, columns: list[str]):
        self.layout, self.stage, self.columns = layout, stage, columns
        self._shard_of: dict[str, int] = {}

    def shard_of(self, item_id: str) -> int | None:
        if item_id not in self._shard_of:
            self._index()  # built lazily, rebuilt when an id is new (a later run in this process)
        return self._shard_of.get(item_id)

    def _index(self) -> None:
        summary = json.loads(self.layout.stage_record(self.stage).read_text())
        self._shard_of = {}
        for shard in range(summary["num_shards"]):
            for item_id in pq.read_table(self.layout.shard(self.stage, shard), columns=["id"]).column("id").to_pylist():
                self._shard_of[item_id] = shard

    def read(self, shard: int, ids: list[str]) -> dict[str, dict]:
        table = pq.read_table(self.layout.shard(self.stage, shard), columns=["id", *self.columns],
                              filters=[("id", "in", ids)])
        return {row["id"]: row for row in table.to_pylist()}
