"""The `status` table: per stage, shards done and stale, items, errors, time spent, ledger notes."""
from __future__ import annotations

import dataclasses

from pipeline.config import RunConfig
from pipeline.ledger import stage_status
from pipeline.plan import plan
from pipeline.shards import Layout


def stale_shards(run: RunConfig) -> dict[str, int]:
    """Per configured stage, how many of its shards on disk the current config would rebuild."""
    every_stage = dataclasses.replace(run, only=None, shards=None)
    return {s.stage: s.stale for s in plan(every_stage).stages}


def format_status(run: RunConfig) -> str:
    layout = Layout(run.context["data_root"])
    try:
        stale: dict[str, int] | None = stale_shards(run)
        problem = ""
    except Exception as exc:  # e.g. the source file moved: the ledger still reads, so status still shows
        stale, problem = None, f"stale shards unknown: {exc}"
    lines = [f"{'stage':<20}{'shards':>10}{'stale':>7}{'items':>8}{'errors':>8}{'elapsed':>10}  notes"]
    for node in run.stages:
        s = stage_status(layout, node.name)
        total = "?" if s["shards_total"] is None else s["shards_total"]
        notes = ", ".join(f"{k}={v}" for k, v in sorted(s["error_reasons"].items()))
        shown = {**{k: v for k, v in s["metrics"].items() if not k.endswith("_sum")}, **s["means"]}
        extra = ", ".join(f"{k}={v:g}" for k, v in sorted(shown.items()))
        stale_cell = "?" if stale is None else str(stale.get(node.name, 0))
        lines.append(f"{node.name:<20}{s['shards_done']:>5}/{total:<4}{stale_cell:>7}{s['items']:>8}{s['errors']:>8}"
                     f"{s['elapsed_s']:>9.1f}s  {'; '.join(x for x in (notes, extra) if x)}")
    if stale and any(stale.values()):
        lines.append("stale: shards the current config would rebuild (`plan` names the changed settings)")
    if problem:
        lines.append(problem)
    return "\n".join(lines)
