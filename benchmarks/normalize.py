"""The three text-for-speech normalizers side by side on the hand-written reading tables: share of
cases read right, failures by class, and speed in
table inputs per second on one core (the process is pinned to one core; readings are not cached;
NeMo's grammars are compiled into the model cache first and not timed).
Target: the default normalizer reads >= 98% of the table right.

Two tables: tests/text/normalizer_cases.tsv (written together with the rules normalizer's fixes, so
its score is optimistic) and tests/text/normalizer_heldout.tsv (written without looking at any
normalizer, scored once as it was written: the honest figure).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from pipeline.cli import load_config
from stages.text.normalizers import DEFAULT, NAMES, get_normalizer, normalizer_version
from stages.text.readings import load_cases, score

TABLES = Path(__file__).resolve().parents[1] / "tests" / "text"


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    tables = {name: load_cases(TABLES / f"normalizer_{name}.tsv") for name in ("cases", "heldout")}
    with tempfile.TemporaryDirectory() as scratch:
        model_cache = load_config([f"data_root={scratch}", "progress=false"]).context["model_cache"]
    print(", ".join(f"{name}: {len(cases)} cases" for name, cases in tables.items()) + f"; default: {DEFAULT}")
    rows = []
    for name in NAMES:
        normalize = get_normalizer(name, model_cache)
        normalize("Warm up: 5 km on 3/4/2021.")  # loads (or compiles) NeMo's grammars
        started = time.perf_counter()
        results = {table: score(normalize, cases) for table, cases in tables.items()}
        rate = sum(len(cases) for cases in tables.values()) / (time.perf_counter() - started)
        rows.append((name, results, rate))
        for table, result in results.items():
            print(f"{name:7s} {table:8s} failures by class {dict(result.failures_by_class())}")
        print(f"{name:7s} {normalizer_version(name)}")
    print(f"\n{'normalizer':10s} " + " ".join(f"{table:>17s}" for table in tables) + f" {'inputs/s/core':>14s}")
    for name, results, rate in rows:
        cells = " ".join(f"{r.right:4d}/{r.total:<4d} {r.share:6.1%}" for r in results.values())
        print(f"{name:10s} {cells} {rate:14.1f}")
    for table in tables:
        best = max(rows, key=lambda r: r[1][table].share)[0]
        share = next(r[1][table].share for r in rows if r[0] == DEFAULT)
        print(f"{table}: best {best}; default {DEFAULT} reads {share:.1%} (target >= 98%)")


if __name__ == "__main__":
    main()
