"""The dataset card ${data_root}/README.md, generated from the ledger and the published splits:
a Hugging Face YAML header, the splits, Table 1 beside the paper's figures, drops per stage and
reason, quality (voices, every stored score, the funnel), engine versions per stage, plots, columns,
exports, and how to load it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from pipeline.ledger import errors_table, shard_records, stage_status
from pipeline.shards import Layout
from stages.package_stats import PAPER, TrainingStats
from stages.package_train import SPLITS, PublishedSplit

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
    **{f"{side}_dnsmos_{m}": f"DNSMOS {label} of {side}_audio (1-5; null: not scored)"
       for side in ("instruction", "response")
       for m, label in (("p808", "P.808 MOS"), ("sig", "P.835 signal"), ("bak", "P.835 background"),
                        ("ovrl", "P.835 overall"))},
    "response_units": "HuBERT k-means units of response_audio, repeats merged",
    "response_unit_frames": "20 ms frames before merging repeats",
    "response_units_per_second": "len(response_units) / response_duration",
    "rewrite_model": "LLM of the rewrite step", "rewrite_prompt_hash": "its prompt's hash",
    "respond_model": "LLM of the respond step", "respond_prompt_hash": "its prompt's hash",
    "meaning_similarity": "cosine similarity (all-MiniLM-L6-v2) of instruction and instruction_spoken",
    "meaning_judge": "1-5: does instruction_spoken ask for the same thing (LLM judge; null: not judged)",
    "answer_similarity": "cosine similarity of instruction_spoken and response",
    "answer_judge": "1-5: does response answer instruction_spoken (LLM judge; null: not judged)",
    "instruction_tts": "TTS voice and version", "response_tts": "TTS voice and version",
    "asr_model": "ASR of the response check", "units_model": "HuBERT weights, layer and k-means centroids",
    "config_fingerprint": "fingerprint of the package shard (manifests/package/shard-*.json): "
                          "digests every upstream setting, code version and input",
}


@dataclass
class CardInputs:
    pretty_name: str
    license: str
    features: object  # datasets.Features of the published rows (audio not decoded)
    stats: TrainingStats
    splits: dict[str, PublishedSplit]
    fractions: dict[str, float] = field(default_factory=dict)  # held-out split -> fraction (package `splits`)
    plots: list[tuple[str, str]] = field(default_factory=list)
    lineage: dict = field(default_factory=dict)  # stage -> engine versions
    pipeline: list[str] = field(default_factory=list)  # the stages that fed the package, in graph order, source first
    exports: list[tuple[str, Path, str]] = field(default_factory=list)  # (format, folder, description)
    notice: str | None = None  # the package setting card.notice


@dataclass
class DropAccount:
    """Every item read that was not published, counted once."""

    read: int  # records ingest read (its rows_in)
    kept: int  # items published
    dropped: list[tuple[str, str, int]]  # (stage, reason, items): each by the first stage in pipeline order
    also: list[tuple[str, str, int]]  # (stage, reason, rows): ledger rows of items counted above (or kept)
    unaccounted: list[str]  # ids that vanished upstream with no ledger entry

    @property
    def total(self) -> int:
        return sum(n for _, _, n in self.dropped) + len(self.unaccounted)

    def to_json(self) -> dict:
        return {"read": self.read, "kept": self.kept, "lost": self.total,
                "dropped": [{"stage": st, "reason": r, "items": n} for st, r, n in self.dropped],
                "also_ledgered": [{"stage": st, "reason": r, "rows": n} for st, r, n in self.also],
                "missing_upstream_unledgered": self.unaccounted}


def drops(layout: Layout, kept_ids: set[str], pipeline: list[str], item_of=lambda item_id: item_id) -> DropAccount:
    """Ingest's ledger rows are records that never became items (one each, even when a duplicate
    shares a kept item's id); every later loss is an ingested id not kept, counted by the first
    stage in pipeline order that ledgered it. Other ledger rows (an item failed on both sides, a
    stage ledgered it again) are listed as `also`. Total = records read - items kept. `item_of` maps a
    ledgered id to its item (a dialogue's turn to the dialogue)."""
    order = {name: i for i, name in enumerate(pipeline)}
    table = errors_table(layout)
    rows = list(zip(*(table.column(c).to_pylist() for c in ("stage", "shard", "reason", "id")))) if table.num_rows \
        else []
    rows.sort(key=lambda r: (order.get(r[0], len(order)), r[0], r[1]))  # stable: ledger order within a shard
    ingested: set[str] = set()
    for path in sorted((layout.root / "stages" / pipeline[0]).glob("shard-*.parquet")):
        ingested.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    lost = ingested - kept_ids
    first: dict[tuple[str, str], int] = {}
    also: dict[tuple[str, str], int] = {}
    counted: set[str] = set()
    for stage, _, reason, ledgered_id in rows:
        item_id = item_of(ledgered_id)
        if stage == pipeline[0]:
            first[(stage, reason)] = first.get((stage, reason), 0) + 1
        elif item_id in lost and item_id not in counted:
            counted.add(item_id)
            first[(stage, reason)] = first.get((stage, reason), 0) + 1
        else:
            also[(stage, reason)] = also.get((stage, reason), 0) + 1

    def table_rows(counts):
        return sorted(((s, r, n) for (s, r), n in counts.items()),
                      key=lambda x: (order.get(x[0], len(order)), x[0], -x[2], x[1]))

    read = sum(r.get("rows_in", r["rows"] + r["errors"]) for r in shard_records(layout, pipeline[0]))
    return DropAccount(read=read, kept=len(kept_ids), dropped=table_rows(first), also=table_rows(also),
                       unaccounted=sorted(lost - counted))


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def published(c: CardInputs) -> list[PublishedSplit]:
    return [c.splits[name] for name in SPLITS if name in c.splits and c.splits[name].rows]


def yaml_header(c: CardInputs) -> str:
    header = {
        "pretty_name": c.pretty_name,
        "license": c.license,
        "language": ["en"],
        "task_categories": ["audio-to-audio", "automatic-speech-recognition", "text-to-speech"],
        "tags": ["speech", "spoken-instructions", "instruction-tuning", "hubert-units", "llama-omni", "synthetic"],
        "size_categories": [size_category(c.stats.items)],
        # Empty splits are left out: `datasets` fails on a configured split that has no rows.
        "configs": [{"config_name": "default", "data_files": [
            {"split": s.name, "path": f"data/{s.name}-*.parquet"} for s in published(c)]}],
        "dataset_info": {
            "features": c.features._to_yaml_list(),
            "splits": [{"name": s.name, "num_bytes": s.bytes, "num_examples": s.rows} for s in published(c)],
            "download_size": c.stats.bytes,
            "dataset_size": c.stats.bytes,
        },
    }
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n"


def type_name(feature) -> str:
    from datasets import Audio, List

    if isinstance(feature, Audio):
        return f"audio ({feature.sampling_rate} Hz{'' if feature.decode else ', not decoded: {bytes, path}'})"
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
    out = [f"> {c.notice.strip()}"] if c.notice else []
    if any("random weights" in versions.get("hubert", "") for versions in c.lineage.values()):
        out.append("> **Units from random weights.** This build ran the local profile: HuBERT-base with random "
                   "weights (seeded), because no registry ships HuBERT weights and the machine was offline. Its "
                   "`response_units` exercise the pipeline but carry no phonetic meaning; do not train on them. "
                   "The full profile uses the recipe's mHuBERT (layer 11) and its 1000 k-means centroids.")
    return out


def splits_section(c: CardInputs) -> list[str]:
    held = ", ".join(f"{name} {c.fractions.get(name, 0.0):.2%}" for name in SPLITS[1:])
    lines = ["## Splits", "", f"Each item's split is fixed by a hash of its id ({held}, train the rest): it stays in "
             "its split across rebuilds and shard sizes. Files: `data/{split}-NNNNN-of-NNNNN.parquet`.", "",
             "| split | items | share | files |", "|---|---:|---:|---:|"]
    total = sum(split.rows for split in c.splits.values())
    for name in SPLITS:
        split = c.splits.get(name, PublishedSplit(name))
        if split.rows:
            lines.append(f"| {name} | {split.rows:,} | {split.rows / total:.1%} | {len(split.files)} |")
        else:
            lines.append(f"| {name} | 0 | | empty: not published |")
    empty = [name for name in SPLITS if not c.splits.get(name, PublishedSplit(name)).rows]
    if empty:
        why = [f"{name} ({'fraction 0' if name != 'train' and not c.fractions.get(name) else 'no item fell in it'})"
               for name in empty]
        lines += ["", f"Empty in this build: {', '.join(why)}. An empty split has no file and is not in the YAML "
                  "`configs`, so `load_dataset` does not offer it."]
    return lines + [""]


def funnel(account: DropAccount, pipeline: list[str]) -> list[tuple[str, int, str]]:
    """(stage, items left after it, its two main drop reasons): ingest's read count first, then every
    stage in pipeline order; it ends at the published count."""
    by_stage: dict[str, list[tuple[str, int]]] = {}
    for stage, reason, n in account.dropped:
        by_stage.setdefault(stage, []).append((reason, n))
    left, out = account.read, [("read", account.read, "")]
    for stage in pipeline + [s for s in by_stage if s not in pipeline]:
        dropped = sorted(by_stage.get(stage, []), key=lambda rn: (-rn[1], rn[0]))
        left -= sum(n for _, n in dropped)
        out.append((stage, left, ", ".join(f"{r}: {n}" for r, n in dropped[:2])))
    if account.unaccounted:
        out.append(("(unknown)", left - len(account.unaccounted), f"missing_upstream: {len(account.unaccounted)}"))
    return out


def quality_section(stats: TrainingStats) -> list[str]:
    lines = ["## Quality", ""]
    if stats.voices:
        total = sum(stats.voices.values())
        lines += [f"Instruction voices: {len(stats.voices)} distinct.", "", "| voice | items | share |",
                  "|---|---:|---:|"]
        lines += [f"| {voice} | {n:,} | {n / total:.1%} |" for voice, n in stats.voices.items()] + [""]
    if stats.scores:
        lines += ["Every per-item score stored in the rows (published items; an item without the score is "
                  "left out of its row here):", "", "| column | items | mean | 10th pct | median | 90th pct |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, values in stats.scores.items():
            finite = values[np.isfinite(values)]
            if not len(finite):
                lines.append(f"| `{name}` | 0 | | | | |")
                continue
            p10, p50, p90 = np.percentile(finite, [10, 50, 90])
            lines.append(f"| `{name}` | {len(finite):,} | {finite.mean():.3g} | {p10:.3g} | {p50:.3g} | {p90:.3g} |")
        lines.append("")
    return lines


def drops_section(account: DropAccount) -> list[str]:
    lines = ["## Dropped items", "", "Every item that was read but not published, counted once: by the first stage, "
             "in pipeline order, that dropped it, and why (details: `instructs2s errors`).", "",
             "| stage | reason | items |", "|---|---|---:|"]
    lines += [f"| {s} | {r} | {n:,} |" for s, r, n in account.dropped]
    if account.unaccounted:
        lines += [f"| (unknown) | missing_upstream: no ledger entry | {len(account.unaccounted):,} |"]
    lines += [f"| **total** | {account.read:,} read by ingest - {account.kept:,} published | **{account.total:,}** |"]
    if account.also:
        lines += ["", "Also ledgered, for items already counted above (an item can fail on both the instruction "
                  "and the response side, or be ledgered again downstream):", "",
                  "| stage | reason | ledger rows |", "|---|---|---:|"]
        lines += [f"| {s} | {r} | {n:,} |" for s, r, n in account.also]
    return lines + [""]


LOADING = """\
## Loading

Audio columns are declared `Audio(decode=False)`: a row's `instruction_audio` is `{bytes, path}`
with FLAC bytes, so loading needs no torchcodec (the decoder `datasets` would otherwise require).

```python
from datasets import load_dataset

ds = load_dataset("path/to/this/folder")  # or the hub repo id; one entry per published split
ds["train"][0]["instruction_audio"]  # {"bytes": b"fLaC...", "path": "..."}
```

Decoded on access with soundfile (this repository's `stages.loading.load(data_root)` does this):

```python
import io

import soundfile as sf


def decode(batch):
    for column in ("instruction_audio", "response_audio"):
        if column in batch:
            batch[column] = [decoded(cell) for cell in batch[column]]
    return batch


def decoded(cell):
    array, rate = sf.read(io.BytesIO(cell["bytes"]), dtype="float32")
    return {"array": array, "sampling_rate": rate, "path": cell["path"]}


ds = ds.with_transform(decode)  # ds["train"][0]["instruction_audio"]["array"]
```
"""


def exports_section(root: Path, exports: list[tuple[str, Path, str]]) -> list[str]:
    if not exports:
        return []
    lines = ["## Exports", ""]
    for fmt, path, description in exports:
        shown = Path(path).relative_to(root) if Path(path).is_absolute() else Path(path)
        lines.append(f"- `{fmt}`: `{shown.as_posix()}`: {description}")
    return lines + [""]


def render(layout: Layout, c: CardInputs, account: DropAccount) -> str:
    lines = [yaml_header(c), f"# {c.pretty_name}", "",
             "Speech instruction data in the style of InstructS2S-200K (LLaMA-Omni, arXiv 2409.06666), rebuilt "
             "by this repository's pipeline: instructions rewritten for speech, spoken-style responses, "
             "synthesized speech for both, an ASR round-trip check, and discrete HuBERT units of the responses. "
             "This card is generated from the build's ledger (`manifests/`).", ""]
    lines += warnings(c) + ([""] if warnings(c) else [])
    lines += splits_section(c)
    lines += ["## Statistics", "", "All published items (every split):", ""] + table_one(c.stats) + [""]
    lines += quality_section(c.stats)
    if c.stats.sources:
        lines += ["Items per source: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(c.stats.sources.items())), ""]
    if c.plots:
        lines += ["## Plots", ""] + [f"![{title}](plots/{name})" for title, name in c.plots] + [""]
    lines += drops_section(account)
    lines += ["## Pipeline", "", "| stage | items out | dropped | engines |", "|---|---:|---:|---|"]
    for stage in c.pipeline:
        status = stage_status(layout, stage)
        if status["shards_done"] == 0:
            continue
        engines = "; ".join(f"{k}: {v}" for k, v in sorted(c.lineage.get(stage, {}).items()))
        lines.append(f"| {stage} | {status['items']:,} | {status['errors']:,} | {engines.replace('|', '/')} |")
    lines += ["", "## Columns", "", "| column | type | meaning |", "|---|---|---|"]
    for name, feature in c.features.items():
        lines.append(f"| `{name}` | {type_name(feature)} | {COLUMN_NOTES.get(name, '')} |")
    lines += ["", LOADING] + exports_section(layout.root, c.exports)
    lines += ["## Sources and license", "",
              f"License: `{c.license}`. Instructions come from Alpaca (CC BY-NC 4.0) and UltraChat (MIT); "
              "responses and rewrites are generated by the LLM named per row in `rewrite_model` and "
              "`respond_model`, whose own terms also apply.", ""]
    return "\n".join(lines)
