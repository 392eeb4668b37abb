"""The dataset card of a multi-turn build: dialogues, turns per dialogue, voices and their shares,
the drop account and the pipeline, from the published files and the ledger."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.ledger import stage_status
from pipeline.shards import Layout
from stages.package_card import (
    LOADING,
    CardInputs,
    DropAccount,
    drops_section,
    exports_section,
    splits_section,
    type_name,
    yaml_header,
)
from stages.package_stats import TrainingStats


@dataclass
class DialogueStats:
    dialogues: int = 0
    turns: Counter = field(default_factory=Counter)  # turns per dialogue -> dialogues
    voices: Counter = field(default_factory=Counter)  # instruction speaker -> dialogues
    response_voices: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    instruction_s: float = 0.0
    response_s: float = 0.0
    bytes: int = 0


def dialogue_stats(files: list[Path]) -> DialogueStats:
    stats = DialogueStats()
    for path in files:
        stats.bytes += path.stat().st_size
        table = pq.read_table(path, columns=["source", "num_turns", "instruction_speaker", "response_speaker"])
        stats.dialogues += table.num_rows
        stats.turns.update(table.column("num_turns").to_pylist())
        stats.voices.update(table.column("instruction_speaker").to_pylist())
        stats.response_voices.update(table.column("response_speaker").to_pylist())
        stats.sources.update(table.column("source").to_pylist())
        turns = pq.read_table(path, columns=["turns"]).column("turns").combine_chunks().flatten()
        for side in ("instruction", "response"):
            seconds = sum(v or 0.0 for v in turns.field(f"{side}_duration").to_pylist())
            setattr(stats, f"{side}_s", getattr(stats, f"{side}_s") + seconds)
    return stats


def shares(counts: Counter, unit: str) -> list[str]:
    total = sum(counts.values()) or 1
    return [f"| {name} | {n:,} | {n / total:.1%} |" for name, n in counts.most_common()] or [f"| - | 0 {unit} | - |"]


def dialogue_card(layout: Layout, settings, features, splits, stats: DialogueStats, account: DropAccount,
                  pipeline: list[str], lineage: dict, exports) -> str:
    c = CardInputs(pretty_name=settings.card.pretty_name, license=settings.card.license, notice=settings.card.notice,
                   features=features, stats=TrainingStats(items=stats.dialogues, bytes=stats.bytes), splits=splits,
                   fractions=dict(settings.splits), lineage=lineage, pipeline=pipeline, exports=exports)
    turns = sum(k * n for k, n in stats.turns.items())
    lines = [yaml_header(c), f"# {c.pretty_name}", "",
             "Multi-turn speech dialogues in the style of LLaMA-Omni 2's training data, built by this repository's "
             "pipeline: each dialogue's first turn is a rewritten instruction and its spoken answer, later turns "
             "are generated conditioned on the earlier ones; every user turn of a dialogue is spoken in one voice, "
             "every answer in one voice. This card is generated from the build's ledger (`manifests/`).", ""]
    if c.notice:
        lines += [f"> {c.notice.strip()}", ""]
    lines += splits_section(c)
    lines += ["## Statistics", "", f"{stats.dialogues:,} dialogues, {turns:,} turns "
              f"({turns / max(stats.dialogues, 1):.2f} per dialogue); instruction speech "
              f"{stats.instruction_s / 3600:.2f} h, response speech {stats.response_s / 3600:.2f} h.", "",
              "| turns | dialogues | share |", "|---:|---:|---:|"]
    lines += shares(Counter({str(k): n for k, n in sorted(stats.turns.items())}), "dialogues") + [""]
    lines += [f"Instruction voices: {len(stats.voices)} distinct, one per dialogue.", "",
              "| voice | dialogues | share |", "|---|---:|---:|"] + shares(stats.voices, "dialogues") + [""]
    lines += ["Response voices: " + ", ".join(f"{v} ({n:,})" for v, n in stats.response_voices.most_common()), ""]
    if stats.sources:
        lines += ["Dialogues per source: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(stats.sources.items())), ""]
    lines += drops_section(account)
    lines += ["## Pipeline", "", "| stage | rows out | dropped | engines |", "|---|---:|---:|---|"]
    for stage in pipeline:
        status = stage_status(layout, stage)
        if status["shards_done"]:
            engines = "; ".join(f"{k}: {v}" for k, v in sorted(lineage.get(stage, {}).items()))
            lines.append(f"| {stage} | {status['items']:,} | {status['errors']:,} | {engines.replace('|', '/')} |")
    lines += ["", "## Columns", "", "| column | type |", "|---|---|"]
    lines += [f"| `{name}` | {type_name(feature)} |" for name, feature in features.items()]
    lines += ["", LOADING] + exports_section(layout.root, exports)
    return "\n".join(lines) + "\n"
