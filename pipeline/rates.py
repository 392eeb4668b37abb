"""How fast a stage runs: measured in this data_root's ledger, else from the checked-in table
manifests/rates.yaml (rows measured per stage kind, engine and device).

A rate is seconds per unit of work plus a fixed cost per stage run (loading the engine once,
prepare() and finalize()). The unit is an item, or a metric of the shard records that a stage's
cost scales with (the table's `cost_metric`, by stage kind); a metric named `X_ms` is counted in
seconds of X.

`python -m pipeline.rates DATA_ROOT` prints the rates a ledger measured as rows for the table.

The GPU estimate of the full recipe (`gpu_estimate`) is separate: the table's `recipe_work` (work
per stage for the recipe's items) divided by its `gpu_rates` (per-device rates measured by
`python -m benchmarks.gpu_rates`, or published), for N GPUs of a kind (`EstimateSettings`).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

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


# -- the GPU estimate of the recipe -------------------------------------------------------------
@dataclass
class EstimateSettings:
    gpus: int = 8  # GPUs the build runs on
    gpu_kind: str = "H100"  # their kind, as the rate rows name devices
    items: Optional[int] = None  # items to build; None: the recipe's (200,000)

    def __post_init__(self):
        if self.gpus < 1:
            raise ValueError(f"estimate.gpus must be >= 1, got {self.gpus}")
        if self.items is not None and self.items < 1:
            raise ValueError(f"estimate.items must be >= 1 or null, got {self.items}")

    @classmethod
    def from_run(cls, run) -> EstimateSettings:
        from pipeline.errors import ConfigError

        values = dict(run.resolved.get("estimate") or {})
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"estimate: unknown settings {unknown}; known: gpus, gpu_kind, items")
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise ConfigError(str(error)) from None


@dataclass
class StageEstimate:
    stage: str
    work: float  # in `unit`, for the estimate's items
    unit: str  # audio_h | clips | generations
    device_h: float | None  # None: no rate applies
    row: dict | None  # the rate row used
    basis: str  # the rate and where it comes from
    on_cpu: bool = False  # a CPU-core rate: device_h counts core-hours


@dataclass
class GpuEstimate:
    settings: EstimateSettings
    items: int
    stages: list[StageEstimate] = field(default_factory=list)
    cpu_cores_per_gpu: float = 0.0

    def wall_h(self, stage: StageEstimate) -> float | None:
        """Hours on the whole node: a GPU stage spread over every GPU, a CPU stage over the cores."""
        if stage.device_h is None:
            return None
        return stage.device_h / (self.settings.gpus * (self.cpu_cores_per_gpu if stage.on_cpu else 1))

    @property
    def known(self) -> list[StageEstimate]:
        return [s for s in self.stages if s.device_h is not None]

    @property
    def total_wall_h(self) -> float:
        """Stages one after another (the build runs them in order), each on the whole node."""
        return sum(self.wall_h(s) or 0.0 for s in self.known)

    @property
    def dominant(self) -> StageEstimate | None:
        return max(self.known, key=lambda s: self.wall_h(s) or 0.0, default=None)


def device_hours(work: float, unit: str, row: dict) -> float:
    """Device-hours (core-hours for a CPU row) for `work` at the row's per-device rate."""
    rate, per = float(row["rate"]), row["unit"]
    devices = float(row.get("devices") or 1)
    if per == "audio_h_per_device_min" and unit == "audio_h":
        return work / (rate * 60)
    if per == "clips_per_device_s" and unit == "clips":
        return work / rate / 3600
    if per == "output_tokens_per_s" and unit == "generations":
        return work * float(row["tokens_per_generation"]) / (rate / devices) / 3600
    raise ValueError(f"rate unit {per!r} does not apply to work in {unit!r} (row {row.get('engine')})")


def scale_factor(row: dict, kind: str, table: dict) -> tuple[float, str] | None:
    """(factor, why) turning the row's device rate into one of `kind`; None: it does not apply."""
    device = str(row.get("device", ""))
    if device == kind or row.get("device_class") == "cpu_core":
        return 1.0, ""
    for rule in table.get("device_scaling") or []:
        if rule.get("from") == device and rule.get("to") == kind:
            return float(rule["factor"]), f"scaled from {device} x{rule['factor']:g}"
    return None


def pick_rate(stage: str, unit: str, work: float, kind: str, table: dict,
              baseline: bool) -> tuple[dict | None, float | None, str]:
    """The fastest applicable row for the stage on `kind` (the `baseline` rows: before the
    optimizations, else the others): (row, device-hours, basis)."""
    best: tuple[dict | None, float | None, str] = (None, None, "no rate for this device (python -m benchmarks.gpu_rates)")
    for row in table.get("gpu_rates") or []:
        if row.get("stage") != stage or bool(row.get("baseline")) != baseline:
            continue
        scaled = scale_factor(row, kind, table)
        if scaled is None:
            continue
        hours = device_hours(work, unit, row) / scaled[0]
        if best[1] is None or hours < best[1]:
            where = "CPU cores" if row.get("device_class") == "cpu_core" else row["device"]
            basis = "; ".join(x for x in (f"{row['rate']:g} {row['unit']} on {where}", row.get("source"), scaled[1]) if x)
            best = (row, hours, basis)
    return best


def gpu_estimate(settings: EstimateSettings, table: dict, stages: list[str] | None = None,
                 baseline: bool = False) -> GpuEstimate:
    """Device-hours per stage of the recipe for `settings.items`, from the table's rates.
    stages: the stages a run selects (default: every stage of the recipe's work)."""
    recipe = table.get("recipe_work") or {}
    items = settings.items or int(recipe.get("items") or 0)
    share = items / float(recipe["items"]) if recipe.get("items") else 1.0
    result = GpuEstimate(settings, items, cpu_cores_per_gpu=float(table.get("cpu_cores_per_gpu") or 1))
    for stage, work in (recipe.get("stages") or {}).items():
        if stages is not None and stage not in stages:
            continue
        amount = float(work["work"]) * share
        row, hours, basis = pick_rate(stage, work["unit"], amount, settings.gpu_kind, table, baseline)
        if row is None:  # no "before" row: the stage was not changed; no other: only the "before" one
            row, hours, basis = pick_rate(stage, work["unit"], amount, settings.gpu_kind, table, not baseline)
            basis += " (before the optimization)" if row is not None and not baseline else ""
        result.stages.append(StageEstimate(stage, amount, work["unit"], hours, row, basis,
                                           on_cpu=bool(row and row.get("device_class") == "cpu_core")))
    return result


def estimate_line(result: GpuEstimate) -> str:
    """`estimated: 5.4 h on 8 x H100 for 200,000 items (dominant: speak_instruction)`."""
    s = result.settings
    where = f"{s.gpus} x {s.gpu_kind} for {result.items:,} items"
    missing = [x.stage for x in result.stages if x.device_h is None]
    top = result.dominant
    if not missing:
        return f"estimated: {result.total_wall_h:.1f} h on {where} (dominant: {top.stage if top else '-'})"
    so_far = f"dominant so far: {top.stage}; " if top else ""
    return f"estimated: at least {result.total_wall_h:.1f} h on {where} ({so_far}no rate yet: {', '.join(missing)})"


def format_estimate(result: GpuEstimate, before: GpuEstimate | None = None) -> list[str]:
    """The per-stage table, then the one `estimated:` line (last)."""
    s = result.settings
    lines = [f"GPU estimate of the recipe: {result.items:,} items on {s.gpus} x {s.gpu_kind} "
             f"({result.cpu_cores_per_gpu:g} CPU cores per GPU for CPU stages)",
             f"  {'stage':<20}{'work':>22}{'device-h':>10}{'wall h':>8}" + (f"{'before':>8}" if before else "") + "  rate"]
    old = {x.stage: x for x in before.stages} if before else {}
    for x in result.stages:
        wall = result.wall_h(x)
        hours = "?" if x.device_h is None else f"{x.device_h:.1f}" + ("c" if x.on_cpu else "")
        was = old.get(x.stage)
        was_wall = before.wall_h(was) if (before and was) else None
        lines.append(f"  {x.stage:<20}{f'{x.work:,.0f} {x.unit}':>22}{hours:>10}{'?' if wall is None else f'{wall:.2f}':>8}"
                     + (f"{'?' if was_wall is None else f'{was_wall:.2f}':>8}" if before else "") + f"  {x.basis}")
    lines.append("  (device-h: GPU-hours, or CPU core-hours where marked c; wall h: on the whole node, stages one "
                 "after another; engine loads not counted)")
    if before is not None:
        top = before.dominant
        lines.append(f"  before the optimizations: {before.total_wall_h:.1f} h"
                     + (f" (dominant: {top.stage})" if top else ""))
    lines.append(estimate_line(result))
    return lines


if __name__ == "__main__":
    from pipeline.environment_record import cpu_record

    cpu = cpu_record()
    device = f"cpu: {cpu['model']}, {cpu['usable_cores']} cores ({cpu['machine']}; {' '.join(cpu['numeric_flags'])})"
    print(yaml.safe_dump(measured_rows(sys.argv[1], device), sort_keys=False, allow_unicode=True))
