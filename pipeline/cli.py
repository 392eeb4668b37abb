"""Command line: `python -m pipeline {build,status,errors,schemas} [hydra overrides]`."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException

from pipeline.config import validate
from pipeline.errors import ConfigError, InfrastructureError
from pipeline.ledger import errors_table, stage_status, write_dataset_record
from pipeline.progress import setup_logging
from pipeline.shards import Layout

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
log = logging.getLogger("pipeline")


def load_config(overrides: list[str], config_name: str = "config"):
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name=config_name, overrides=overrides)
    except HydraException as exc:  # unknown key, bad override syntax, missing config file
        raise ConfigError(str(exc).splitlines()[0]) from None
    return validate(cfg)


def cmd_build(run) -> int:
    from pipeline.runner import Runner

    layout = Layout(run.context["data_root"])
    log_path = setup_logging(layout.logs(), run.root.log_level)
    log.info("building into %s (profile %s); log: %s", layout.root, run.root.profile, log_path)
    started = time.time()
    try:
        summaries = Runner(run).build()
    except InfrastructureError as exc:
        print(f"\nERROR: {exc}\nFinished shards are intact; fix the cause and rerun to resume.",
              file=sys.stderr)
        return 2
    write_dataset_record(layout, run.resolved, summaries, started)
    print_status(run)
    return 0


def print_status(run) -> None:
    layout = Layout(run.context["data_root"])
    print(f"\n{'stage':<20}{'shards':>10}{'items':>8}{'errors':>8}{'elapsed':>10}  notes")
    for node in run.stages:
        s = stage_status(layout, node.name)
        total = "?" if s["shards_total"] is None else s["shards_total"]
        notes = ", ".join(f"{k}={v}" for k, v in sorted(s["error_reasons"].items()))
        shown = {**{k: v for k, v in s["metrics"].items() if not k.endswith("_sum")}, **s["means"]}
        extra = ", ".join(f"{k}={v:g}" for k, v in sorted(shown.items()))
        print(f"{node.name:<20}{s['shards_done']:>5}/{total:<4}{s['items']:>8}{s['errors']:>8}"
              f"{s['elapsed_s']:>9.1f}s  {'; '.join(x for x in (notes, extra) if x)}")


def cmd_errors(run, stage: str | None) -> int:
    table = errors_table(Layout(run.context["data_root"]), stage)
    if table.num_rows == 0:
        print("no errors recorded")
        return 0
    for row in table.to_pylist():
        print(f"{row['stage']}\t{row['id']}\t{row['reason']}\t{row['detail'][:160]!r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    parser = argparse.ArgumentParser(prog="python -m pipeline")
    parser.add_argument("command", choices=["build", "status", "errors", "schemas"])
    parser.add_argument("--stage", help="errors: only this stage")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data_root=/tmp/x source.limit=20")
    args = parser.parse_args(argv)
    try:
        run = load_config(args.overrides)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if args.command == "build":
        return cmd_build(run)
    if args.command == "status":
        print_status(run)
        return 0
    if args.command == "schemas":
        from pipeline.schemas import write_schemas

        for path in write_schemas(run):
            print(path)
        return 0
    return cmd_errors(run, args.stage)


if __name__ == "__main__":
    sys.exit(main())
