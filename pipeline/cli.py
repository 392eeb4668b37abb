"""The engine's commands: `build`, `plan`, `status`, `errors`, `schemas` (each with Hydra overrides).

`main(argv, commands)` is shared with the product's `instructs2s` command (stages/cli.py), which adds
its own. A user's mistake (a bad path, a typo in a setting, a data_root without a build) is one line
on stderr and exit code 2; a bug is one line and exit code 1, its traceback in the run's log (and on
the console with --debug).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf

from pipeline import process_hygiene
from pipeline.config import RunConfig, validate
from pipeline.console import console
from pipeline.data_root import claim, require_build
from pipeline.error_listing import print_errors
from pipeline.errors import ConfigError, InfrastructureError
from pipeline.hub_downloads import hub_references
from pipeline.ledger import write_dataset_record
from pipeline.resources import conf_dir
from pipeline.run_log import setup_logging
from pipeline.shards import Layout

log = logging.getLogger("pipeline")


def compose_config(overrides: list[str], config_name: str = "config", with_hydra: bool = False):
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=with_hydra)
    except HydraException as exc:  # unknown key, bad override syntax, missing config file
        raise ConfigError(str(exc).splitlines()[0]) from None


def load_config(overrides: list[str], config_name: str = "config") -> RunConfig:
    return validate(compose_config(overrides, config_name))


def cmd_build(run: RunConfig, args=None) -> int:
    from pipeline.plan import remaining_seconds
    from pipeline.runner import Runner
    from pipeline.status_table import format_status

    runner = Runner(run)
    runner.preflight()  # user errors before anything is written
    root = claim(run.context["data_root"])
    try:
        runner.estimates = remaining_seconds(run)  # the build's ETA on the progress bars
    except Exception as exc:  # an estimate must never stop a build: it runs without the build's ETA
        log.warning("no build ETA: %s: %s", type(exc).__name__, exc)
    layout = Layout(root)
    log_path = setup_logging(layout.logs(), run.root.log_level, debug=args is not None and args.debug,
                             verbose=getattr(args, "verbose", False))
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
              file=console.stderr)
        return 2
    write_dataset_record(layout, run.resolved, summaries, started)
    print("\n" + format_status(run), file=console.stdout)
    return 0


def cmd_plan(run: RunConfig, args) -> int:
    from pipeline.plan import format_plan, plan

    print(format_plan(plan(run)))
    return 0


def cmd_status(run: RunConfig, args) -> int:
    from pipeline.status_table import format_status

    require_build(run.context["data_root"])
    print(format_status(run))
    return 0


def cmd_errors(run: RunConfig, args) -> int:
    require_build(run.context["data_root"])
    names = [n.name for n in run.stages]
    if args.stage is not None and args.stage not in names:
        raise ConfigError(f"--stage {args.stage!r} is not a stage of this config; stages: {', '.join(names)}")
    print_errors(Layout(run.context["data_root"]), args.stage, args.format)
    return 0


def cmd_schemas(run: RunConfig, args) -> int:
    from pipeline.schemas import schema_drift, write_schemas

    if args.write:
        for path in write_schemas(run):
            print(path)
        return 0
    drift = schema_drift(run)
    print(f"schemas differ from the code: {', '.join(drift)} (rewrite with --write)" if drift
          else "schemas match the code")
    return 1 if drift else 0


@dataclass
class Command:
    """One subcommand. `run(run_config, args)` gets the composed config; a `passthrough` command
    gets the raw arguments instead (it composes its own config, as the trainer does)."""
    run: Callable
    help: str
    options: Callable[[argparse.ArgumentParser], None] = field(default=lambda parser: None)
    passthrough: bool = False


def errors_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", help="only this stage's dropped items")
    parser.add_argument("--format", choices=["text", "tsv", "csv", "json"], default="text",
                        help="output format (text is escaped and shortened for a terminal)")


def build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="engine output (model libraries, worker processes) on the console too, not only in the run's log")


ENGINE_COMMANDS: dict[str, Command] = {
    "build": Command(cmd_build, "run the pipeline: every selected stage, resuming finished shards",
                     build_options),
    "plan": Command(cmd_plan, "what a build would do, without running it: per stage shards done, stale "
                    "(naming the changed settings), to run, and the estimated time"),
    "status": Command(cmd_status, "per stage: shards done/total, stale shards, items, errors, elapsed, metrics"),
    "errors": Command(cmd_errors, "every dropped item with its stage, reason and detail", errors_options),
    "schemas": Command(cmd_schemas, "check the checked-in shard schemas (manifests/schemas/) against the code",
                       lambda p: p.add_argument("--write", action="store_true",
                                                help="rewrite manifests/schemas/ instead of checking")),
}


class OneLineParser(argparse.ArgumentParser):
    """A wrong option is a user's mistake like any other: one line and exit code 2."""

    def error(self, message: str):
        print(f"config error: {self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def command_parser(prog: str, name: str, command: Command) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=f"{prog} {name}", description=command.help,
                                     epilog="Overrides are Hydra's: key=value, e.g. data_root=/tmp/x "
                                            "source.limit=20 stages.only=[ingest]; profile=full for the recipe.")
    command.options(parser)
    parser.add_argument("--cfg", choices=["job", "all"],
                        help="print the composed config (job: the run's; all: with Hydra's own) and exit")
    parser.add_argument("--debug", action="store_true", help="print tracebacks on the console too")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data_root=/tmp/x source.limit=20")
    return parser


def overview(prog: str, commands: dict[str, Command]) -> str:
    width = max(map(len, commands))
    lines = [f"usage: {prog} COMMAND [options] [key=value ...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {c.help}" for name, c in commands.items()]
    lines += ["", f"`{prog} COMMAND --help` names each command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None, commands: dict[str, Command] | None = None,
         prog: str = "python -m pipeline") -> int:
    commands = ENGINE_COMMANDS if commands is None else commands
    # Called from Python (argv given), the process goes on: engine output goes back to the terminal
    # when the command ends. A command-line process keeps it in the log to the end, where engines
    # still shutting down (vLLM's engine core) print their farewells.
    in_process = argv is not None
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(overview(prog, commands), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"config error: unknown command {name!r}; commands: {', '.join(commands)}", file=sys.stderr)
        return 2
    command = commands[name]
    if command.passthrough:
        return command.run(rest)
    args = command_parser(prog, name, command).parse_intermixed_args(rest)
    try:
        if args.cfg:
            cfg = compose_config(args.overrides, with_hydra=args.cfg == "all")
            print(OmegaConf.to_yaml(cfg), end="")
            return 0
        return command.run(load_config(args.overrides), args)
    except ConfigError as exc:
        log.debug("configuration error", exc_info=True)
        print(f"config error: {exc}", file=console.stderr)
        return 2
    except InfrastructureError as exc:
        log.debug("infrastructure failure", exc_info=True)
        print(f"ERROR: {exc}", file=console.stderr)
        return 2
    except Exception as exc:  # a bug: one line here, the traceback in the run's log
        where = next((h.baseFilename for h in logging.getLogger().handlers
                      if isinstance(h, logging.FileHandler)), None)
        if where:
            log.error("unexpected error", exc_info=True)
        print(f"internal error: {type(exc).__name__}: {exc}" + (f" (traceback in {where})" if where else "")
              + ("" if args.debug else "; rerun with --debug to see the traceback"), file=console.stderr)
        if args.debug:
            traceback.print_exc(file=console.stderr)
        return 1
    finally:
        if in_process:
            console.restore()


if __name__ == "__main__":
    sys.exit(main())
