"""Every engine benchmark, each in its own process, and their rate lines gathered into rows for
manifests/rates.yaml (`gpu_rates`).

    python -m benchmarks.gpu_rates              # on a CPU: --tiny (code paths only) + the verify engine before/after
    python -m benchmarks.gpu_rates --out rates-h200.yaml   # on a GPU machine: real shapes
    python -m benchmarks.gpu_rates --tiny --only whisper vits
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.gpu_rates.common import cuda_available, parse

ENGINES = ["hubert", "whisper", "vits", "cosyvoice", "llm"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_rates", description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (default without CUDA)")
    parser.add_argument("--out", type=Path, default=None, help="write the measured rows (YAML) here")
    parser.add_argument("--only", nargs="+", choices=ENGINES, default=ENGINES)
    args = parser.parse_args(argv)
    tiny = args.tiny or not cuda_available()
    rows, failed = [], []
    for name in args.only:
        command = [sys.executable, "-m", f"benchmarks.gpu_rates.{name}"] + (["--tiny"] if tiny and name != "llm" else [])
        print(f"\n== {name}: {' '.join(command[1:])}", flush=True)
        started = time.time()
        done = subprocess.run(command, capture_output=True, text=True)
        print("\n".join(line for line in done.stdout.splitlines() if not line.startswith("RATE ")), flush=True)
        if done.returncode:
            print(done.stderr[-3000:])
            failed.append(name)
        rows += [{**row, "command": "python -m " + " ".join(command[2:]), "source": "measured"} for row in parse(done.stdout)]
        print(f"== {name}: {'ok' if not done.returncode else 'FAILED'} in {time.time() - started:.0f}s")
    if args.out:
        args.out.write_text(yaml.safe_dump({"gpu_rates": rows}, sort_keys=False, allow_unicode=True))
        print(f"{len(rows)} rows written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
