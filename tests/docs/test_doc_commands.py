"""Every command the docs show runs as written: its make target exists, its subcommand and options
parse, its overrides compose and validate, and `plan` (a dry run) accepts it."""
import dataclasses
import re
import shlex

import pytest
from doc_commands import REPO, DocCommand, all_doc_commands, commands_in
from omegaconf import OmegaConf

from pipeline.cli import command_parser, load_config
from pipeline.errors import ConfigError, MissingModelError
from pipeline.plan import plan
from stages.cli import COMMANDS

MAKE_TARGETS = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), flags=re.M))
# make targets that call `instructs2s COMMAND`; the others (setup, test, lint, ...) take no overrides.
MAKE_COMMANDS = {"build-dataset": "build", "plan": "plan", "status": "status", "errors": "errors",
                 "export-dataset": "export", "train": "train", "infer": "infer",
                 "eval": "eval"}
FOUND = all_doc_commands()
# Each distinct command once (named by its first place): `make status` is shown in many places.
DISTINCT = list({(c.program, c.args): c for c in reversed(FOUND)}.values())[::-1]


def cli_arguments(command: DocCommand) -> list[str] | None:
    """The `instructs2s` arguments a documented command amounts to (None: not an instructs2s call)."""
    if command.program == "make":
        variables = dict(w.split("=", 1) for w in command.args if "=" in w.split("/")[0])
        targets = [w for w in command.args if w not in {f"{k}={v}" for k, v in variables.items()}]
        assert targets and set(targets) <= MAKE_TARGETS, f"{command}: no such make target"
        if targets[0] not in MAKE_COMMANDS:
            assert not variables, f"{command}: `make {targets[0]}` takes no ARGS"
            return None
        cli = [MAKE_COMMANDS[targets[0]]]
        if cli[0] == "export":
            cli.append(variables.get("FORMAT", "llama_omni"))
        return cli + shlex.split(variables.get("ARGS", ""))
    if command.program == "instructs2s" or command.program == "pipeline":
        return list(command.args)
    program = command.program.removeprefix("omni.")  # python -m omni.train|infer|evaluate
    return [{"evaluate": "eval"}.get(program, program), *command.args]


def check(command: DocCommand, scratch) -> None:
    cli = cli_arguments(command)
    if cli is None:
        return
    assert cli and cli[0] in COMMANDS, f"{command}: no such command"
    name, rest = cli[0], cli[1:]
    if COMMANDS[name].passthrough:  # the trainer composes conf/train.yaml itself
        from omni.config import UserError
        from omni.config import load_config as train_config

        try:
            cfg = train_config(rest)
        except UserError as exc:
            pytest.fail(f"{command}: {exc}")
        missing = [k for k in cfg if OmegaConf.is_missing(cfg, k)]
        assert not missing, f"{command}: missing {missing}"
        assert name != "infer" or cfg.audio, f"{command}: infer needs audio=FILE"
        return
    try:
        args = command_parser("instructs2s", name, COMMANDS[name]).parse_intermixed_args(rest)
    except SystemExit:
        pytest.fail(f"{command}: options do not parse")
    try:
        run = load_config(args.overrides)
        stages = [n.name for n in run.stages]
        assert getattr(args, "stage", None) in (None, *stages), f"{command}: no stage {args.stage}"
        # The dry run on an empty folder, of the whole graph (a partial build's earlier stages are its
        # prerequisites; validate() has checked the names in stages.only): nothing run or written.
        plan(dataclasses.replace(run, only=None, root=dataclasses.replace(run.root, data_root=str(scratch))))
    except MissingModelError:
        pass  # a model only the user can supply (profile=full) or make (stand-ins); the message says how
    except ConfigError as exc:
        pytest.fail(f"{command}: {exc}")


def test_the_docs_show_commands():
    programs = {c.program for c in FOUND}
    assert {"make", "instructs2s"} <= programs and len(FOUND) > 20


@pytest.mark.parametrize("command", DISTINCT, ids=str)
def test_documented_command_runs_as_written(command, tmp_path):
    check(command, tmp_path)


@pytest.mark.parametrize("wrong", [
    'make build-dataset ARGS="stages.respond.max_new_tokens=96"',  # a key that does not exist
    'make infer ARGS="audio=FILE.wav"',  # the trainer's mandatory data_root left out
    'make infer ARGS="data_root=data"',  # no question to answer
    "instructs2s errors --stage nosuchstage",
    "make build-datasets",
])
def test_a_wrong_command_in_the_docs_is_caught(wrong, tmp_path):
    found = commands_in(f"```\n{wrong}\n```\n", "example.md")
    assert len(found) == 1
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        check(found[0], tmp_path)
