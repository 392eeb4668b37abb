"""What every engine benchmark reports: one rate line per measured setting.

A line is `RATE {json}`: engine, model_shape, device, precision, batch, audio_s (audio made or
heard), wall_s, devices (GPUs or CPU cores the work ran on), peak_mib (peak GPU memory allocated
on CUDA, else peak resident memory of the measuring process), and the derived
audio_h_per_device_min (audio hours per device-minute; per core for CPU engines).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import threading
import time
from contextlib import contextmanager

PREFIX = "RATE "


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name()
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@contextmanager
def peak_memory(device: str):
    """Yields a dict whose `mib` is the peak memory of the block (GPU allocated, or process RSS)."""
    out = {"mib": 0.0}
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        yield out
        torch.cuda.synchronize()
        out["mib"] = torch.cuda.max_memory_allocated() / 2**20
        return
    import psutil

    me, done = psutil.Process(), threading.Event()

    def sample():
        while not done.is_set():
            out["mib"] = max(out["mib"], me.memory_info().rss / 2**20)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield out
    finally:
        done.set()
        sampler.join()
        out["mib"] = max(out["mib"], me.memory_info().rss / 2**20)


def rate_row(*, engine: str, model_shape: str, device: str, precision: str, batch: str, audio_s: float,
             wall_s: float, peak_mib: float, devices: float = 1, **extra) -> dict:
    per_device_min = wall_s * devices / 60
    return {"engine": engine, "model_shape": model_shape, "device": device, "precision": precision,
            "batch": batch, "audio_s": round(audio_s, 2), "wall_s": round(wall_s, 3), "devices": devices,
            "peak_mib": round(peak_mib, 1), "audio_h_per_device_min": round(audio_s / 3600 / per_device_min, 5),
            "date": datetime.date.today().isoformat(), **extra}


def emit(row: dict) -> dict:
    print(PREFIX + json.dumps(row, ensure_ascii=False), flush=True)
    extra = f", {row['clips_per_device_s']:.2f} clips/s per device" if "clips_per_device_s" in row else ""
    print(f"  {row['engine']} [{row['precision']}, {row['batch']}] on {row['device']}: "
          f"{row['audio_h_per_device_min']:.4f} audio h per device-minute{extra}, peak {row['peak_mib']:.0f} MiB",
          flush=True)
    return row


def parse(output: str) -> list[dict]:
    return [json.loads(line[len(PREFIX):]) for line in output.splitlines() if line.startswith(PREFIX)]
