"""The dataset card ${data_root}/README.md, generated from the ledger and the training shards:
a Hugging Face YAML header, Table 1 beside the paper's figures, drops per stage and reason,
engine versions per stage, plots, columns, and how to load it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from pipeline.ledger import errors_table, stage_status
from pipeline.shards import Layout
from stages.package_stats import PAPER, TrainingStats

PIPELINE = ["ingest", "rewrite", "respond", "speak_instruction", "speak_response", "verify_instruction",
            "verify_response", "units", "package"]

COLUMN_NOTES = {
    "id": "stable item id, assigned at ingest",
    "source": "alpaca, ultrachat or sample",
    "instruction": "the original instruction text",
    "instruction_spoken": "the instruction rewritten for speech (what instruction_audio says)",
    "response": "the spoken-style text response (what response_audio says)",
    "instruction_audio": "FLAC, 16 kHz mono: the model's input",
    "response_audio": "FLAC, 16 kHz mono: the speech the units come from",
    "instruction_speaker": "voice of the instruction", "response_speaker": "voice of the response",
    "instruction_duration": "seconds", "response_duration": "seconds",
    "instruction_wer": "ASR round-trip WER of instruction_audio against instruction_spoken",
    "response_wer": "ASR round-trip WER of response_audio against response",
    "response_units": "HuBERT k-means units of response_audio, repeats merged",
    "response_unit_frames": "20 ms frames before merging repeats",
    "response_units_per_second": "len(response_units) / response_duration",
    "rewrite_model": "LLM of the rewrite step", "rewrite_prompt_hash": "its prompt's hash",
    "respond_model": "LLM of the respond step", "respond_prompt_hash": "its prompt's hash",
    "instruction_tts": "TTS voice and version", "response_tts": "TTS voice and version",
    "asr_model": "ASR of the response check", "units_model": "HuBERT weights, layer and k-means centroids",
    "config_fingerprint": "fingerprint of the package shard (manifests/package/shard-*.json): "
                          "digests every upstream setting, code version and input",
}


@dataclass
class CardInputs:
    pretty_name: str
    license: str
    features: object  # datasets.Features of the training rows
    stats: TrainingStats
    train_files: list[Path]
    plots: list[tuple[str, str]] = field(default_factory=list)
    lineage: dict = field(default_factory=dict)
    export_path: str | None = None


def drops(layout: Layout, kept_ids: set[str]) -> tuple[list[tuple[str, str, int]], list[str]]:
    """((stage, reason, items) sorted by pipeline order, ids that vanished with no ledger entry)."""
    table = errors_table(layout)
    counts: dict[tuple[str, str], int] = {}
    ledgered: set[str] = set()
    if table.num_rows:
        for stage, reason, item_id in zip(*(table.column(c).to_pylist() for c in ("stage", "reason", "id"))):
            counts[(stage, reason)] = counts.get((stage, reason), 0) + 1
            ledgered.add(item_id)
    order = {name: i for i, name in enumerate(PIPELINE)}
    rows = sorted(((s, r, n) for (s, r), n in counts.items()), key=lambda x: (order.get(x[0], 99), x[0], -x[2]))
    ingested: set[str] = set()
    for path in sorted((layout.root / "stages" / "ingest").glob("shard-*.parquet")):
        ingested.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    unaccounted = sorted(ingested - kept_ids - ledgered)
    return rows, unaccounted


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def yaml_header(c: CardInputs) -> str:
    header = {
        "pretty_name": c.pretty_name,
        "license": c.license,
        "language": ["en"],
        "task_categories": ["audio-to-audio", "automatic-speech-recognition", "text-to-speech"],
        "tags": ["speech", "spoken-instructions", "instruction-tuning", "hubert-units", "llama-omni", "synthetic"],
        "size_categories": [size_category(c.stats.items)],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "train/train-*.parquet"}]}],
        "dataset_info": {
            "features": c.features._to_yaml_list(),
            "splits": [{"name": "train", "num_bytes": c.stats.bytes, "num_examples": c.stats.items}],
            "download_size": c.stats.bytes,
            "dataset_size": c.stats.bytes,
        },
    }
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n"


def type_name(feature) -> str:
    from datasets import Audio, List

    if isinstance(feature, Audio):
        return f"audio ({feature.sampling_rate} Hz)"
    if isinstance(feature, List):
        return f"list<{type_name(feature.feature)}>"
    return str(getattr(feature, "dtype", type(feature).__name__))


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def table_one(stats: TrainingStats) -> list[str]:
    ours = stats.table_one()
    rows = [
        ("instruction speech, hours", "instruction_hours", 3), ("instruction, mean seconds", "instruction_seconds", 1),
        ("instruction, mean words", "instruction_words", 1), ("response speech, hours", "response_hours", 3),
        ("response, mean seconds", "response_seconds", 1), ("response, mean words", "response_words", 1),
        ("response units, mean per response", "units_per_response", 1),
        ("response units per second", "units_per_second", 1),
    ]
    lines = ["| | this build | paper (Table 1, 200K items) |", "|---|---:|---:|",
             f"| items | {stats.items:,} | about 200,000 |"]
    lines += [f"| {label} | {_fmt(ours[key], digits)} | {_fmt(PAPER[key], 1)} |" for label, key, digits in rows]
    return lines


def warnings(c: CardInputs) -> list[str]:
    out = []
    units_model = c.lineage.get("units", {}).get("hubert", "")
    if "random weights" in units_model:
        out.append("> **Units from random weights.** This build ran the local profile: HuBERT-base with random "
                   "weights (seeded), because no registry ships HuBERT weights and the machine was offline. Its "
                   "`response_units` exercise the pipeline but carry no phonetic meaning; do not train on them. "
                   "The full profile uses the recipe's mHuBERT (layer 11) and its 1000 k-means centroids.")
    return out


def render(layout: Layout, c: CardInputs, dropped: list[tuple[str, str, int]], unaccounted: list[str]) -> str:
    lines = [yaml_header(c), f"# {c.pretty_name}", "",
             "Speech instruction data in the style of InstructS2S-200K (LLaMA-Omni, arXiv 2409.06666), rebuilt "
             "by this repository's pipeline: instructions rewritten for speech, spoken-style responses, "
             "synthesized speech for both, an ASR round-trip check, and discrete HuBERT units of the responses. "
             "This card is generated from the build's ledger (`manifests/`).", ""]
    lines += warnings(c) + ([""] if warnings(c) else [])
    lines += ["## Statistics", ""] + table_one(c.stats) + [""]
    if c.stats.sources:
        lines += ["Items per source: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(c.stats.sources.items())), ""]
    if c.plots:
        lines += ["## Plots", ""] + [f"![{title}](plots/{name})" for title, name in c.plots] + [""]
    lines += ["## Dropped items", "", "Every item that did not reach the training shards, by the stage that "
              "dropped it and why (details: `python -m pipeline errors`).", "",
              "| stage | reason | items |", "|---|---|---:|"]
    lines += [f"| {s} | {r} | {n:,} |" for s, r, n in dropped] or ["| (none) | | 0 |"]
    if unaccounted:
        lines += [f"| (unknown) | missing_upstream: no ledger entry | {len(unaccounted):,} |"]
    lines += ["", "## Pipeline", "", "| stage | items out | dropped | engines |", "|---|---:|---:|---|"]
    for stage in PIPELINE:
        status = stage_status(layout, stage)
        if status["shards_done"] == 0:
            continue
        engines = "; ".join(f"{k}: {v}" for k, v in sorted(c.lineage.get(stage, {}).items()))
        lines.append(f"| {stage} | {status['items']:,} | {status['errors']:,} | {engines.replace('|', '/')} |")
    lines += ["", "## Columns", "", "| column | type | meaning |", "|---|---|---|"]
    for name, feature in c.features.items():
        lines.append(f"| `{name}` | {type_name(feature)} | {COLUMN_NOTES.get(name, '')} |")
    lines += ["", "## Loading", "", "```python", "from datasets import Audio, load_dataset", "",
              'ds = load_dataset("parquet", data_files="train/train-*.parquet", split="train")',
              "# decode=False keeps FLAC bytes; decode them with soundfile (no torchcodec needed)",
              'ds = ds.cast_column("instruction_audio", Audio(decode=False))',
              'ds = ds.cast_column("response_audio", Audio(decode=False))', "```", ""]
    if c.export_path:
        lines += ["## LLaMA-Omni export", "", f"`{c.export_path}` holds the JSON list LLaMA-Omni's training code "
                  "reads (a `<speech>` human turn, the text response, `tgt_units`) and a 16 kHz wav per "
                  "instruction.", ""]
    lines += ["## Sources and license", "",
              f"License: `{c.license}`. Instructions come from Alpaca (CC BY-NC 4.0) and UltraChat (MIT); "
              "responses and rewrites are generated by the LLM named per row in `rewrite_model` and "
              "`respond_model`, whose own terms also apply.", ""]
    return "\n".join(lines)
