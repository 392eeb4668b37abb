"""The three text-for-speech normalizers side by side on the hand-written reading table
(tests/text/normalizer_cases.tsv): share of cases read right, failures by class, and speed in
table inputs per second on one core (the process is pinned to one core; readings are not cached;
NeMo's grammars are compiled into the model cache first and not timed).
Target: the default normalizer reads >= 98% of the table right.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from pipeline.cli import load_config
from stages.text.normalizers import DEFAULT, NAMES, get_normalizer, normalizer_version
from stages.text.readings import load_cases, score

TABLE = Path(__file__).resolve().parents[1] / "tests" / "text" / "normalizer_cases.tsv"


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cases = load_cases(TABLE)
    with tempfile.TemporaryDirectory() as scratch:
        model_cache = load_config([f"data_root={scratch}", "progress=false"]).context["model_cache"]
    print(f"{len(cases)} cases in {len(set(c.kind for c in cases))} classes; default: {DEFAULT}")
    rows = []
    for name in NAMES:
        normalize = get_normalizer(name, model_cache)
        normalize("Warm up: 5 km on 3/4/2021.")  # loads (or compiles) NeMo's grammars
        started = time.perf_counter()
        result = score(normalize, cases)
        rate = len(cases) / (time.perf_counter() - started)
        rows.append((name, result, rate))
        print(f"{name:7s} {normalizer_version(name)}: failures by class {dict(result.failures_by_class())}")
    print(f"\n{'normalizer':10s} {'read right':>14s} {'inputs/s/core':>14s}")
    for name, result, rate in rows:
        print(f"{name:10s} {result.right:4d}/{result.total} {result.share:6.1%} {rate:14.1f}")
    best = max(rows, key=lambda r: r[1].share)[0]
    default_share = next(r[1].share for r in rows if r[0] == DEFAULT)
    print(f"best: {best}; default {DEFAULT} reads {default_share:.1%} (target >= 98%)")


if __name__ == "__main__":
    main()
