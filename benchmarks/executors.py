"""Ray against the local executor on the same CPU stages, side by side in one run.

1. ingest (a real CPU stage) over 40,000 Alpaca-format rows in 40 shards: in-process, a local
   process pool of 2, and 2 Ray workers on a local Ray instance of 2 CPUs.
2. passthrough over 200 tiny shards: the per-shard cost of each executor when a shard does
   almost nothing.
Each timing is the best of two rounds (the machine is shared); a stage's time includes starting
its workers, which both pools pay. Ray's own start is timed apart: it is paid once per build.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from pipeline.cli import load_config
from pipeline.config import ExecutorSettings, validate
from pipeline.executors.local import LocalExecutor
from pipeline.executors.ray import RayExecutor
from pipeline.runner import Runner

SAMPLE = Path(__file__).resolve().parent.parent / "stages" / "samples" / "alpaca_sample.json"
INGEST_ROWS = 40_000
TINY_SHARDS = 200
ROUNDS = 2


def write_alpaca(path: Path, rows: int) -> None:
    sample = json.loads(SAMPLE.read_text())
    path.write_text(json.dumps([sample[i % len(sample)] for i in range(rows)]))


def ingest_config(root: Path, source: Path, workers: int):
    return load_config([f"data_root={root}", "source=alpaca", f"source.path={source}", "stages.only=[ingest]",
                        "progress=false", "shard_size=1000", "stages.ingest.dedupe_text=false",
                        f"stages.ingest.workers={workers}"])


def tiny_config(root: Path, workers: int, only: str):
    return validate(OmegaConf.create({
        "profile": "bench", "data_root": str(root), "shard_size": 10, "seed": 0,
        "model_cache": str(root / "models"), "progress": False,
        "stages": {"source": {"kind": "generated", "items": TINY_SHARDS * 10},
                   "pass": {"kind": "passthrough", "upstream": "source", "suffix": ".", "workers": workers},
                   "only": [only]},
    }))


def timed_stage(run, executor) -> float:
    """Seconds for the stage to run (into a fresh data_root, so nothing is skipped)."""
    started = time.perf_counter()
    Runner(run, executor).build()
    return time.perf_counter() - started


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    settings = ExecutorSettings(name="ray", num_cpus=2)
    owner = RayExecutor(settings)  # starts the instance; executors made later join it and leave it up
    best: dict[str, float] = {}

    def record(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "alpaca.json"
        write_alpaca(source, INGEST_ROWS)
        started = time.perf_counter()
        owner.connect()
        ray_start = time.perf_counter() - started
        try:
            for round_ in range(ROUNDS):
                for name, workers, executor in (("local in-process", 1, LocalExecutor()),
                                                ("local pool of 2", 2, LocalExecutor()),
                                                ("ray, 2 workers", 2, RayExecutor(settings))):
                    root = tmp / f"ingest-{round_}-{workers}-{name[:3]}"
                    record(f"ingest {name}", timed_stage(ingest_config(root, source, workers), executor))
                    tiny = tmp / f"tiny-{round_}-{workers}-{name[:3]}"
                    Runner(tiny_config(tiny, workers, "source"), LocalExecutor()).build()
                    record(f"tiny {name}", timed_stage(tiny_config(tiny, workers, "pass"), executor))
        finally:
            owner.close()

    print(f"Ray local instance start (once per build): {ray_start:.1f} s")
    print(f"\ningest, {INGEST_ROWS:,} rows in {INGEST_ROWS // 1000} shards (best of {ROUNDS}):")
    for name in ("local in-process", "local pool of 2", "ray, 2 workers"):
        seconds = best[f"ingest {name}"]
        print(f"  {name:<18} {seconds:6.2f} s  {INGEST_ROWS / seconds:8,.0f} rows/s")
    print(f"  overhead ratio ray / local pool of 2:  {best['ingest ray, 2 workers'] / best['ingest local pool of 2']:.2f}")
    print(f"  overhead ratio ray / local in-process: {best['ingest ray, 2 workers'] / best['ingest local in-process']:.2f}")
    print(f"\npassthrough, {TINY_SHARDS} shards of 10 items (best of {ROUNDS}):")
    for name in ("local in-process", "local pool of 2", "ray, 2 workers"):
        seconds = best[f"tiny {name}"]
        print(f"  {name:<18} {seconds:6.2f} s  {1000 * seconds / TINY_SHARDS:6.1f} ms per shard")
    print(f"  overhead ratio ray / local pool of 2:  {best['tiny ray, 2 workers'] / best['tiny local pool of 2']:.2f}")


if __name__ == "__main__":
    main()
