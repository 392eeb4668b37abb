"""The engine's own cost: a passthrough stage over generated items, items/s and peak RSS.

The passthrough stage runs alone (in-process, one core) in a fresh process per size, so the peak
RSS is the stage run's own; 10x the items must stay within 1.5x the memory (the engine streams
shard by shard).
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time

from omegaconf import OmegaConf

from pipeline.config import validate
from pipeline.runner import Runner


def config(data_root: str, items: int, only: list[str]):
    return validate(OmegaConf.create({
        "profile": "bench", "data_root": data_root, "shard_size": 1000, "seed": 0,
        "model_cache": data_root + "/models", "progress": False,
        "stages": {"source": {"kind": "generated", "items": items},
                   "pass": {"kind": "passthrough", "upstream": "source", "suffix": "."},
                   "only": only},
    }))


def child(data_root: str, items: int, only: str) -> None:
    started = time.perf_counter()
    Runner(config(data_root, items, [only])).build()
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"items": items, "seconds": elapsed, "peak_rss_mb": peak_mb}))


def measure(data_root: str, items: int, only: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.engine", "--child", data_root, str(items), only],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    results = {}
    for items in (200_000, 2_000_000):
        with tempfile.TemporaryDirectory() as root:
            measure(root, items, "source")
            results[items] = measure(root, items, "pass")
    small, large = results[200_000], results[2_000_000]
    for r in (small, large):
        print(f"passthrough {r['items']:>9,} items: {r['items'] / r['seconds']:>9,.0f} items/s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB")
    print(f"peak RSS ratio 10x items / 1x: {large['peak_rss_mb'] / small['peak_rss_mb']:.2f} (must be <= 1.5)")
    print(f"throughput target 20,000 items/s on one core: "
          f"{'met' if small['items'] / small['seconds'] >= 20_000 else 'NOT met'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
