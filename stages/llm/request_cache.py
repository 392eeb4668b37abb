"""Generations kept on disk, one small JSON file per request, keyed by everything that can
change the model's output: model, messages, sampling parameters, schema and seed.

A crash mid-shard loses nothing that finished (each generation is written the moment it is
done); a change to the parser, normalizer or validator reuses every generation; a change to
the prompt or model misses. One file per key, written to a temporary name and renamed, keeps
concurrent workers (and shared cluster file systems) safe without a database.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Optional

from pipeline.shards import atomic_write_bytes
from stages.llm.requests import ChatRequest, Generation

CACHE_FORMAT = 1  # bump when the key recipe or the entry layout changes
GENERATION_FIELDS = frozenset(f.name for f in dataclasses.fields(Generation))


def request_key(model: dict, request: ChatRequest) -> str:
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "model": model,
            "messages": request.messages,
            "sampling": dataclasses.asdict(request.sampling),
            "schema": request.json_schema,
            "seed": request.seed,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class RequestCache:
    def __init__(self, directory: str | os.PathLike):
        self.root = Path(directory)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Optional[Generation]:
        try:
            entry = json.loads(self._path(key).read_text())
        except (FileNotFoundError, ValueError):  # absent, or torn by a crash: a miss
            return None
        return Generation(**{k: v for k, v in entry.items() if k in GENERATION_FIELDS}, cache_hit=True)

    def put(self, key: str, generation: Generation) -> None:
        if generation.error is not None:
            return  # refusals by the engine are about the request, not worth keeping
        entry = dataclasses.asdict(generation)
        entry.pop("cache_hit")
        atomic_write_bytes(self._path(key), json.dumps(entry, sort_keys=True).encode())
