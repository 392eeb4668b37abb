"""Per-clip scores kept on disk, one small JSON file per (audio, scorer), so a rerun that changes
only what is done with the scores (a threshold) computes none of them again.

The key is the sha256 of the clip's stored bytes plus the scorer's identity: its engine and model
versions and every setting that changes its output (an ASR's model, beam width, precision). A
change to any of those misses; a change to a bound hits. Entries are written to a temporary name
and renamed (as the LLM request cache does), so concurrent workers and crashes leave no torn file.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from pipeline.shards import atomic_write_bytes

CACHE_FORMAT = 1  # bump when the key recipe or the entry layout changes


def audio_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def score_key(audio_sha256: str, scorer: str, identity: dict[str, Any]) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "audio": audio_sha256, "scorer": scorer, "identity": identity},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class ScoreCache:
    """`directory` None: nothing is kept (every get misses, put does nothing)."""

    def __init__(self, directory: str | os.PathLike | None):
        self.root = Path(directory) if directory is not None else None

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Optional[dict[str, Any]]:
        if self.root is None:
            return None
        try:
            entry = json.loads(self._path(key).read_text())
        except (FileNotFoundError, ValueError):  # absent, or torn by a crash: a miss
            return None
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, scores: dict[str, Any]) -> None:
        if self.root is not None:
            atomic_write_bytes(self._path(key), json.dumps(scores, sort_keys=True).encode())
