"""Command line: `python -m pipeline {build,status,errors,schemas} [hydra overrides]`.

A user's mistake (a bad path, a typo in a setting, a data_root without a build) is one line on
stderr and exit code 2; a bug is one line and exit code 1, its traceback in the run's log (and on
the console with --debug).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException

from pipeline import process_hygiene
from pipeline.config import validate
from pipeline.data_root import claim, require_build
from pipeline.error_listing import print_errors
from pipeline.errors import ConfigError, InfrastructureError
from pipeline.hub_downloads import hub_references
from pipeline.ledger import stage_status, write_dataset_record
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


def cmd_build(run, args=None) -> int:
    from pipeline.runner import Runner

    runner = Runner(run)
    runner.preflight()  # user errors before anything is written
    root = claim(run.context["data_root"])
    layout = Layout(root)
    log_path = setup_logging(layout.logs(), run.root.log_level, debug=args is not None and args.debug)
    cleaned = process_hygiene.prepare(root, offline=run.root.offline)
    if any(cleaned.values()):
        log.info("cleaned leftovers of an interrupted build: %s", cleaned)
    log.info("building into %s (profile %s); log: %s", layout.root, run.root.profile, log_path)
    if not run.root.offline and (downloads := hub_references(run.resolved)):
        log.info("online profile: may download (unless cached): %s", ", ".join(downloads))
    started = time.time()
    try:
        summaries = runner.build()
    except InfrastructureError as exc:
        log.debug("infrastructure failure", exc_info=True)
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


def cmd_status(run, args) -> int:
    require_build(run.context["data_root"])
    print_status(run)
    return 0


def cmd_errors(run, args) -> int:
    require_build(run.context["data_root"])
    names = [n.name for n in run.stages]
    if args.stage is not None and args.stage not in names:
        raise ConfigError(f"--stage {args.stage!r} is not a stage of this config; stages: {', '.join(names)}")
    print_errors(Layout(run.context["data_root"]), args.stage, args.format)
    return 0


def cmd_schemas(run, args) -> int:
    """Check the checked-in shard schemas against the code; --write rewrites them."""
    from pipeline.schemas import schema_drift, write_schemas

    if args.write:
        for path in write_schemas(run):
            print(path)
        return 0
    drift = schema_drift(run)
    print(f"schemas differ from the code: {', '.join(drift)} (rewrite with --write)" if drift
          else "schemas match the code")
    return 1 if drift else 0


COMMANDS = {"build": cmd_build, "status": cmd_status, "errors": cmd_errors, "schemas": cmd_schemas}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline",
                                     description="Build, inspect and check an InstructS2S dataset.")
    parser.add_argument("command", choices=list(COMMANDS))
    parser.add_argument("--stage", help="errors: only this stage")
    parser.add_argument("--format", choices=["text", "tsv", "csv", "json"], default="text",
                        help="errors: output format (text is escaped and shortened for a terminal)")
    parser.add_argument("--write", action="store_true", help="schemas: rewrite manifests/schemas/ (default: check)")
    parser.add_argument("--debug", action="store_true", help="print tracebacks on the console too")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data_root=/tmp/x source.limit=20")
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run = load_config(args.overrides)
        return COMMANDS[args.command](run, args)
    except ConfigError as exc:
        log.debug("configuration error", exc_info=True)
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except InfrastructureError as exc:
        log.debug("infrastructure failure", exc_info=True)
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line here, the traceback in the run's log
        where = next((h.baseFilename for h in logging.getLogger().handlers
                      if isinstance(h, logging.FileHandler)), None)
        if where:
            log.error("unexpected error", exc_info=True)
        print(f"internal error: {type(exc).__name__}: {exc}" + (f" (traceback in {where})" if where else "")
              + ("" if args.debug else "; rerun with --debug to see the traceback"), file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
