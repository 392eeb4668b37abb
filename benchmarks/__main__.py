"""Run every benchmark (or those named: `make bench ARGS="engine llm"`), each in its own process."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

BENCHMARKS = ["engine", "executors", "llm", "meaning", "normalize", "tts", "speech_gate", "units", "train", "gpu_rates",
              "estimate"]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    failed = []
    for name in names:
        if importlib.util.find_spec(f"benchmarks.{name}") is None:
            print(f"== {name}: not present, skipped")
            continue
        print(f"\n== {name}", flush=True)
        started = time.time()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"])
        print(f"== {name}: {'ok' if code == 0 else f'FAILED ({code})'} in {time.time() - started:.0f}s")
        if code:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
