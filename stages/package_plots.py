"""PNG histograms for the dataset card (matplotlib, headless Agg backend)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.shards import atomic_write_bytes
from stages.package_stats import PAPER, TrainingStats

INSTRUCTION, RESPONSE = "#1f77b4", "#ff7f0e"


def write_plots(stats: TrainingStats, plot_dir: Path) -> list[tuple[str, str]]:
    """Writes the plots; returns (title, file name) pairs, in card order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = [
        ("Speech durations", "durations.png", _durations),
        ("Response units per second (after merging repeats)", "units_per_second.png", _units_per_second),
        ("ASR round-trip WER", "wer.png", _wer),
    ]
    written = []
    for title, name, draw in plots:
        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
        draw(ax, stats)
        ax.set_title(title)
        fig.tight_layout()
        atomic_write_bytes(plot_dir / name, _png(fig))
        plt.close(fig)
        written.append((title, name))
    return written


def _png(fig) -> bytes:
    import io

    buffer = io.BytesIO()
    # Fixed metadata keeps the bytes identical across rebuilds of the same data.
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _hist(ax, values, label, color, bins):
    if values is not None and len(values):
        ax.hist(values, bins=bins, alpha=0.6, label=f"{label} (n={len(values)})", color=color)


def _durations(ax, stats: TrainingStats) -> None:
    inst, resp = stats.arrays.get("instruction_duration"), stats.arrays.get("response_duration")
    top = max([30.0] + [float(np.max(v)) for v in (inst, resp) if v is not None and len(v)])
    bins = np.linspace(0, top, 40)
    _hist(ax, inst, "instruction", INSTRUCTION, bins)
    _hist(ax, resp, "response", RESPONSE, bins)
    ax.axvline(PAPER["instruction_seconds"], color=INSTRUCTION, linestyle="--", label="paper mean, instruction")
    ax.axvline(PAPER["response_seconds"], color=RESPONSE, linestyle="--", label="paper mean, response")
    ax.axvline(30, color="grey", linestyle=":", label="30 s: what the model hears")
    ax.set_xlabel("seconds")
    ax.set_ylabel("items")
    ax.legend(fontsize=7)


def _units_per_second(ax, stats: TrainingStats) -> None:
    _hist(ax, stats.arrays.get("response_units_per_second"), "response", RESPONSE, 40)
    ax.axvline(PAPER["units_per_second"], color="black", linestyle="--", label="paper, about 29/s")
    ax.set_xlabel("units per second")
    ax.set_ylabel("items")
    ax.legend(fontsize=7)


def _wer(ax, stats: TrainingStats) -> None:
    bins = np.linspace(0, 1, 41)
    _hist(ax, stats.arrays.get("instruction_wer"), "instruction", INSTRUCTION, bins)
    _hist(ax, stats.arrays.get("response_wer"), "response", RESPONSE, bins)
    ax.set_xlabel("word error rate (Whisper transcript vs. text)")
    ax.set_ylabel("items")
    ax.legend(fontsize=7)
