"""The text-for-speech normalizers by name, each with a result cache so that a rerun costs nothing.

* ``rules``: our pure-Python rules (stages/text/normalize.py); fast, no grammar to build.
* ``nemo``: NVIDIA NeMo's English WFST normalizer alone.
* ``hybrid``: our rules for markup and the forms NeMo misreads, NeMo for the other semiotic
  classes, our rules to finish (stages/text/nemo_normalizer.py).

Results are kept in a SQLite file keyed by (normalizer name and version, text); the version
changes with the code of the normalizer and the NeMo/pynini release, so stale readings are
never served.
"""
from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

from pipeline.errors import ConfigError

from . import nemo_normalizer, normalize

NAMES = ("hybrid", "rules", "nemo")
DEFAULT = "rules"  # best on tests/text/normalizer_cases.tsv (benchmarks/normalize.py)
_HERE = Path(__file__).parent


def _source_hash(*modules: str) -> str:
    digest = hashlib.sha256()
    for module in modules:
        digest.update((_HERE / module).read_bytes())
    return digest.hexdigest()[:12]


@cache
def normalizer_version(name: str) -> str:
    if name == "rules":
        return f"rules {_source_hash('normalize.py')}"
    if name == "nemo":
        return f"nemo {_source_hash('nemo_normalizer.py')} {nemo_normalizer.nemo_version()}"
    if name == "hybrid":
        return f"hybrid {_source_hash('normalize.py', 'nemo_normalizer.py')} {nemo_normalizer.nemo_version()}"
    raise ConfigError(f"unknown normalizer {name!r}; choose one of {', '.join(NAMES)}")


class ResultCache:
    """Readings on disk by (normalizer version, text); safe for several processes."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS readings (key TEXT PRIMARY KEY, spoken TEXT NOT NULL)")
        self._db.commit()
        self._lock = threading.Lock()

    @staticmethod
    def key(version: str, text: str) -> str:
        return hashlib.sha256(f"{version}\0{text}".encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT spoken FROM readings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, spoken: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO readings VALUES (?, ?)", (key, spoken))
            self._db.commit()


def _uncached(name: str, cache_dir: str) -> Callable[[str], str]:
    if name == "rules":
        return normalize.normalize_for_speech
    if name == "nemo":
        return lambda text: nemo_normalizer.nemo_normalize(text, cache_dir)
    return lambda text: nemo_normalizer.hybrid_normalize(text, cache_dir)


def get_normalizer(name: str, cache_dir: str | Path, results_dir: str | Path | None = None) -> Callable[[str], str]:
    """The normalizer called `name`; NeMo's compiled grammars live under `cache_dir` (the model
    cache), readings are cached in `results_dir` (none when None)."""
    version = normalizer_version(name)
    run = _uncached(name, str(cache_dir))
    if results_dir is None:
        return run
    cache = ResultCache(Path(results_dir) / "normalized_text.sqlite")

    def cached(text: str) -> str:
        key = ResultCache.key(version, text)
        spoken = cache.get(key)
        if spoken is None:
            spoken = run(text)
            cache.put(key, spoken)
        return spoken

    return cached
