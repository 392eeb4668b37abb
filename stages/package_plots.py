"""PNG histograms for the dataset card (matplotlib, headless Agg backend)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.shards import atomic_write_bytes
from stages.package_stats import PAPER, TrainingStats

MAX_SCORE_PANELS = 16  # the scores figure's small multiples; more columns are in the card's table only

INSTRUCTION, RESPONSE = "#1f77b4", "#ff7f0e"


def write_plots(stats: TrainingStats, funnel: list[tuple[str, int, str]], plot_dir: Path) -> list[tuple[str, str]]:
    """Writes the plots; returns (title, file name) pairs, in card order. `funnel`: (stage, items
    left after it, its main drop reasons), from the ledger's drop account."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = [
        ("Items left after each stage", "funnel.png", lambda ax: _funnel(ax, funnel)),
        ("Speech durations", "durations.png", lambda ax: _durations(ax, stats)),
        ("Response units per second (after merging repeats)", "units_per_second.png",
         lambda ax: _units_per_second(ax, stats)),
        ("ASR round-trip WER", "wer.png", lambda ax: _wer(ax, stats)),
    ]
    written = []
    for title, name, draw in plots:
        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
        draw(ax)
        ax.set_title(title)
        fig.tight_layout()
        atomic_write_bytes(plot_dir / name, _png(fig))
        plt.close(fig)
        written.append((title, name))
    if stats.scores:
        fig = _scores_figure(plt, stats.scores)
        atomic_write_bytes(plot_dir / "scores.png", _png(fig))
        plt.close(fig)
        written.append(("Every stored score, per item", "scores.png"))
    return written


def _funnel(ax, funnel: list[tuple[str, int, str]]) -> None:
    names = [stage for stage, _, _ in funnel][::-1]
    left = [n for _, n, _ in funnel][::-1]
    ax.barh(names, left, color="#4c72b0")
    for y, (_, n, why) in enumerate(funnel[::-1]):
        ax.text(n, y, f" {n:,}" + (f"  ({why})" if why else ""), va="center", fontsize=7)
    ax.set_xlabel("items")
    ax.set_xlim(0, max(left + [1]) * 1.8)  # room for the reasons


def _scores_figure(plt, scores: dict[str, np.ndarray]):
    names = list(scores)[:MAX_SCORE_PANELS]
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), dpi=100, squeeze=False)
    for ax, name in zip(axes.flat, names):
        values = scores[name][np.isfinite(scores[name])]
        if len(values):
            ax.hist(values, bins=30, color="#55a868")
        ax.set_title(f"{name} (n={len(values)})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


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
