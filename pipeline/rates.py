"""How fast a stage runs: measured in this data_root's ledger, else from the checked-in table
manifests/rates.yaml (rows measured per stage kind, engine and device).

A rate is seconds per unit of work plus a fixed cost per stage run (loading the engine once,
prepare() and finalize()). The unit is an item, or a metric of the shard records that a stage's
cost scales with (the table's `cost_metric`, by stage kind); a metric named `X_ms` is counted in
seconds of X.

`python -m pipeline.rates DATA_ROOT` prints the rates a ledger measured as rows for the table.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.ledger import load_record, shard_records, stage_overhead_s
from pipeline.resources import manifests_dir
from pipeline.shards import Layout

TABLE = "rates.yaml"


@dataclass
class Rate:
    per_item_s: float  # seconds of one worker per item
    fixed_s: float  # once per stage run: engine load, prepare(), finalize()
    keep: float | None  # share of items that come out (rows / rows_in); None: not measured
    basis: str  # where the numbers come from, for the plan's table
    metric: str | None = None  # the cost metric, where measured per metric as well
    per_metric_s: float | None = None  # seconds per unit of `metric` (per second for an `_ms` metric)
    device: str | None = None  # where a table row was measured


def metric_amount(metrics: dict, metric: str) -> float | None:
    """A record's amount of the cost metric (an `_ms` metric in seconds), None if it lacks it."""
    value = metrics.get(metric)
    if value is None:
        return None
    return value / 1000 if metric.endswith("_ms") else float(value)


def metric_unit(metric: str) -> str:
    return metric[: -len("_ms")] + "_s" if metric.endswith("_ms") else metric


def load_table(path: Path | None = None) -> dict:
    path = path or manifests_dir() / TABLE
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def ledger_rate(layout: Layout, stage: str, kind: str, cost_metric: str | None) -> Rate | None:
    """Rates this machine measured for the stage in this data_root (stale shards count too: the
    work was done here). None when it never ran a row here."""
    records = [r for r in shard_records(layout, stage) if r.get("kind") == kind]
    items = sum(r["rows_in"] for r in records)
    if not items:
        return None
    setup = max((r.get("setup_s", 0.0) for r in records), default=0.0)
    work = sum(r["elapsed_s"] - r.get("setup_s", 0.0) for r in records)
    summary = load_record(layout.stage_record(stage)) or {}
    fixed = setup + stage_overhead_s(summary, records)
    basis = f"ledger: {work / items:.3g} s/item + {fixed:.0f} s"
    if not any("setup_s" in r for r in records):
        basis += " (engine load inside the per-item rate)"
    rate = Rate(per_item_s=work / items, fixed_s=fixed, keep=sum(r["rows"] for r in records) / items, basis=basis)
    amounts = [metric_amount(r.get("metrics", {}), cost_metric) for r in records] if cost_metric else []
    if amounts and None not in amounts and sum(amounts) > 0:
        rate.metric, rate.per_metric_s = cost_metric, work / sum(amounts)
    return rate


def flatten(values: dict | list, prefix: str = "") -> dict:
    """{"a": {"b": [x]}} -> {"a.b.0": x}: settings by dotted path, as overrides name them."""
    pairs = values.items() if isinstance(values, dict) else enumerate(values)
    out = {}
    for key, value in pairs:
        if isinstance(value, (dict, list)) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def plain(values) -> object:
    """As it reads back from a JSON record (tuples become lists, odd types strings)."""
    return json.loads(json.dumps(values, default=str))


def table_rate(stage: str, kind: str, settings, table: dict) -> Rate | None:
    """The table's best row for this stage: same kind, every `match` setting equal (the
    engine, model, device); the same stage name and more matched settings win, then the latest."""
    current = flatten(plain(dataclasses.asdict(settings)))  # runtime knobs too
    rows = [r for r in table.get("rows") or [] if r.get("stage_kind") == kind and r.get("unit") == "s/item"
            and all(current.get(k) == v for k, v in (r.get("match") or {}).items())]
    if not rows:
        return None
    row = max(rows, key=lambda r: (r.get("stage") == stage, len(r.get("match") or {}), str(r.get("date"))))
    basis = f"table: {row['rate']:.3g} s/item + {row.get('fixed_s', 0):.0f} s ({row.get('date')})"
    return Rate(per_item_s=float(row["rate"]), fixed_s=float(row.get("fixed_s") or 0.0), keep=row.get("keep"),
                basis=basis, device=row.get("device"))


def stage_rate(layout: Layout, stage: str, kind: str, settings, table: dict) -> Rate | None:
    metric = (table.get("cost_metric") or {}).get(kind)
    return ledger_rate(layout, stage, kind, metric) or table_rate(stage, kind, settings, table)


def measured_rows(data_root: str, device: str) -> list[dict]:
    """The ledger's rates as table rows (fill in `match` and `device` by hand where needed)."""
    layout = Layout(data_root)
    table = load_table()
    rows = []
    for path in sorted((layout.root / "manifests").glob("*/stage.json")):
        summary = json.loads(path.read_text())
        stage, kind = summary["stage"], summary["kind"]
        rate = ledger_rate(layout, stage, kind, (table.get("cost_metric") or {}).get(kind))
        if rate is None:
            continue
        engines = sorted({f"{k}={v}" for r in shard_records(layout, stage) for k, v in r["engine_versions"].items()})
        when = datetime.date.fromtimestamp(summary["finished"]).isoformat()
        common = {"stage_kind": kind, "stage": stage, "engine": "; ".join(engines) or kind, "device": device,
                  "fixed_s": round(rate.fixed_s, 1), "keep": round(rate.keep, 3),
                  "items": sum(r["rows_in"] for r in shard_records(layout, stage)),
                  "measured_by": f"python -m pipeline.rates {data_root}", "date": when}
        rows.append({**common, "rate": round(rate.per_item_s, 4), "unit": "s/item"})
        if rate.metric:
            rows.append({**common, "rate": round(rate.per_metric_s, 4), "unit": f"s/{metric_unit(rate.metric)}"})
    return rows


if __name__ == "__main__":
    from pipeline.environment_record import cpu_record

    cpu = cpu_record()
    device = f"cpu: {cpu['model']}, {cpu['usable_cores']} cores ({cpu['machine']}; {' '.join(cpu['numeric_flags'])})"
    print(yaml.safe_dump(measured_rows(sys.argv[1], device), sort_keys=False, allow_unicode=True))
