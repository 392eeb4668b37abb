"""Instruction speech (the speak_instruction stage): CosyVoice-300M-SFT through the stage's engine
(stages/engines/cosyvoice_tts.py), random weights at the released shape, K concurrent synthesis
streams per device, each with its own model (K processes, or K threads in one process).

Random weights never decide well when to stop, so every sentence gets exactly the speech tokens of
the recipe's mean instruction (7.5 s at 50 tokens/s = 375): audio hours count that length. The
sentences are English instructions of the recipe's mean length (~22 words). CosyVoice runs in its
own interpreter: .venv-cosyvoice/bin/python, or $COSYVOICE_PYTHON (skipped when neither exists).

    python -m benchmarks.gpu_rates.cosyvoice [--tiny] [--streams 1 2 4 8] [--layout processes threads]
        [--precision fp32 fp16] [--sentences 4]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.gpu_rates.common import emit, rate_row

ROOT = Path(__file__).resolve().parents[2]
CHILD = "benchmarks.gpu_rates.cosyvoice_child"  # a module: run as a script, this folder would shadow cosyvoice
RECIPE_INSTRUCTION_S = 7.5  # mean instruction duration, docs/recipe.md
TOKENS_PER_S = 50  # CosyVoice-300M's speech tokens per second of audio
SENTENCES = [
    "Can you explain in simple terms how a refrigerator keeps food cold without using any ice at all inside it, even in summer?",
    "What are three easy ways to save money on groceries each week when you are cooking for a busy family of four?",
    "Tell me a short story about a lighthouse keeper who finds a message in a bottle on a cold and stormy winter night.",
    "How do I politely ask my neighbor to turn down their music late at night without starting an argument with them?",
    "Could you suggest a simple stretching routine I can do at my desk to relieve the tension in my neck and shoulders?",
    "Why does the moon look bigger when it is close to the horizon than when it is high up in the night sky?",
    "I am planning a weekend trip to the mountains, what should I pack if the weather might suddenly turn cold and wet?",
    "Please describe the main differences between a crocodile and an alligator in a way that a curious young child can easily understand.",
]


def cosyvoice_python() -> Path | None:
    python = Path(os.environ.get("COSYVOICE_PYTHON", ROOT / ".venv-cosyvoice" / "bin" / "python"))
    return python if os.access(python, os.X_OK) else None


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


class StreamProcess:
    """One CosyVoice process (benchmarks/gpu_rates/cosyvoice_child.py) and its commands."""

    def __init__(self, python: Path, settings: dict, log: Path, build: bool):
        command = [str(python), "-m", CHILD, json.dumps({**settings, "build": build})]
        self.log = log
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=log.open("w"),  # a pipe could fill and block
                                        text=True, env=child_env(), cwd=ROOT)

    def send(self, command: dict) -> None:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def answer(self) -> str:
        for line in self.process.stdout:
            if line.strip() == "READY" or line.startswith("{"):
                return line
        raise RuntimeError(f"a CosyVoice stream process failed:\n{self.log.read_text()[-3000:]}")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def measure(pool: list[StreamProcess], groups: list[list[list[str]]]) -> dict:
    """Each process loads the engines its group of streams needs; then all start together."""
    for process, group in zip(pool, groups):
        process.send({"load": len(group)})
    for process in pool[:len(groups)]:
        process.answer()
    for process, group in zip(pool, groups):
        process.send({"sentences": group})
    outputs = [json.loads(process.answer()) for process in pool[:len(groups)]]
    streams = [s for o in outputs for s in o["streams"]]
    wall = max(s["ended"] for s in streams) - min(s["started"] for s in streams)
    return {"audio_s": sum(s["audio_s"] for s in streams), "wall_s": wall,
            "rtf": sum((s["ended"] - s["started"]) / s["audio_s"] for s in streams) / len(streams),
            "peak_mib": sum(o["peak_mib"] for o in outputs), "device": outputs[0]["device"], "cuda": outputs[0]["cuda"]}


def grow(pool: list[StreamProcess], count: int, python: Path, settings: dict, tmp: Path) -> None:
    """Processes are kept from one K to the next; the first builds the model folder."""
    while len(pool) < count:
        build = not Path(settings["model"]).exists()
        pool.append(StreamProcess(python, settings, tmp / f"stream-{len(pool)}.log", build))
        if build:
            pool[-1].send({"load": 1})
            pool[-1].answer()


def run(tiny: bool, streams: list[int], layouts: list[str], precisions: list[str], per_stream: int) -> list[dict]:
    python = cosyvoice_python()
    if python is None:
        print("  cosyvoice: no CosyVoice interpreter (.venv-cosyvoice/bin/python or $COSYVOICE_PYTHON), skipped")
        return []
    tokens = round(RECIPE_INSTRUCTION_S * TOKENS_PER_S)
    shape = ("tiny stand-in (scripts/standins_cosyvoice.py)" if tiny
             else "CosyVoice-300M-SFT (LM 6+14 blocks d1024, flow 6 blocks d512 + 4/12/4 decoder, HiFT 512)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="cosyvoice-bench-") as tmp:
        settings = {"model": str(Path(tmp) / "model"), "tiny": tiny, "tokens": tokens, "threads": 1}
        for precision in precisions:
            for layout in layouts:
                pool: list[StreamProcess] = []
                for k in sorted(streams):  # ascending: a process holds only the models K needs
                    lines = [[SENTENCES[(i * per_stream + n) % len(SENTENCES)] for n in range(per_stream)]
                             for i in range(k)]
                    groups = [[line] for line in lines] if layout == "processes" else [lines]  # per process
                    grow(pool, len(groups), python, {**settings, "precision": precision}, Path(tmp))
                    result = measure(pool, groups)
                    cpu = not result["cuda"]
                    rows.append(emit(rate_row(
                        engine=f"CosyVoice-300M-SFT random weights, SFT mode, {tokens} speech tokens per sentence",
                        model_shape=shape, device=result["device"], precision=precision,
                        batch=f"{k} streams ({layout}), 1 model each", audio_s=result["audio_s"],
                        wall_s=result["wall_s"], peak_mib=result["peak_mib"], devices=k if cpu else 1,
                        stage="speak_instruction", device_class="cpu_core" if cpu else "gpu",
                        real_time_factor=round(result["rtf"], 4), sentences=k * per_stream,
                        note=f"audio fixed at {RECIPE_INSTRUCTION_S:g} s per sentence (the recipe's mean "
                             "instruction); random weights do not stop by themselves")))
                    print(f"  {k} streams ({layout}, {precision}): real-time factor per stream {result['rtf']:.3f}",
                          flush=True)
                for process in pool:
                    process.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_rates.cosyvoice")
    parser.add_argument("--tiny", action="store_true", help="the tiny stand-in, 1 and 2 streams (a CPU check)")
    parser.add_argument("--streams", type=int, nargs="+", default=None, help="concurrent streams (default 1 2 4 8)")
    parser.add_argument("--layout", nargs="+", choices=["processes", "threads"], default=["processes"],
                        help="streams as processes or as threads of one process")
    parser.add_argument("--precision", nargs="+", choices=["fp32", "fp16"], default=["fp32"])
    parser.add_argument("--sentences", type=int, default=None, help="sentences per stream (default 4; tiny 1)")
    args = parser.parse_args(argv)
    started = time.time()
    run(args.tiny, args.streams or ([1, 2] if args.tiny else [1, 2, 4, 8]), args.layout, args.precision,
        args.sentences or (1 if args.tiny else 4))
    print(f"  cosyvoice: {time.time() - started:.0f}s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
