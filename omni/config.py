"""The trainer's Hydra config: composing conf/train.yaml (command lines, tests, bench, infer)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_NAME = "train"


class UserError(Exception):
    """A mistake in the command line or the data folder: one line on stderr, exit code 2."""


def conf_dir() -> Path:
    """The package's `conf/` folder (override with OMNI_CONF_DIR)."""
    from pipeline.resources import conf_dir as package_conf

    env = os.environ.get("OMNI_CONF_DIR")
    return Path(env) if env else package_conf()


def load_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose `conf/train.yaml` with Hydra-style overrides, e.g. ["data_root=/d", "train=full"]."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            return compose(config_name=CONFIG_NAME, overrides=list(overrides or []))
    except HydraException as err:  # unknown key, bad override syntax, unknown profile
        why = [str(e).splitlines()[0] for e in (err, err.__cause__) if str(e or "")]
        raise UserError(" ".join(why)) from None


def command_line(run: Callable[[DictConfig], object], usage: str, argv: list[str] | None = None) -> None:
    """`python -m omni.X key=value ...`: compose the config and call `run(cfg)`; a UserError ends
    the process with one line on stderr and exit code 2 instead of a traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(argv):
        print(usage)
        return
    show = argv.index("--cfg") if "--cfg" in argv else None  # --cfg job: print the config, run nothing
    if show is not None:
        del argv[show:show + 2]
    try:
        cfg = load_config(argv)
        if show is not None:
            print(to_yaml(cfg), end="")
            return
        check_types(cfg, argv)
        missing = [k for k in cfg if OmegaConf.is_missing(cfg, k)]  # data_root: ???
        if missing:
            raise UserError(f"missing value for {', '.join(missing)} (e.g. {missing[0]}=...)")
        run(cfg)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


GROUPS = ("train",)  # config groups: their overrides pick a file, not a value
# Numeric settings whose default is null, so their type cannot be read off the default.
OPTIONAL_INTS = ("max_steps", "interrupt_after_steps", "evaluate.max_items", "train.stage1.epochs", "train.stage2.epochs")


def _expected(default) -> type | None:
    if isinstance(default, bool):
        return bool
    return type(default) if isinstance(default, (int, float)) else None


def check_types(cfg: DictConfig, argv: list[str]) -> None:
    """A command-line value of the wrong type (`infer.omega=abc`) is a user error naming the key:
    each overridden key must keep the type of its default (ints where null-default ints go)."""
    keys = [a.split("=", 1)[0].lstrip("+~") for a in argv if "=" in a]
    keys = [k for k in keys if k not in GROUPS]
    if not keys:
        return
    defaults = load_config([a for a in argv if a.split("=", 1)[0].lstrip("+~") in GROUPS])
    for key in keys:
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        default = OmegaConf.select(defaults, key, default=None, throw_on_resolution_failure=False)
        want = int if key in OPTIONAL_INTS else _expected(default)  # (an interpolated default: unknown)
        if want is None or value is None:
            continue
        fits = isinstance(value, bool) if want is bool else (
            isinstance(value, int) and not isinstance(value, bool) if want is int
            else isinstance(value, (int, float)) and not isinstance(value, bool))
        if not fits:
            name = {bool: "true or false", int: "an integer", float: "a number"}[want]
            raise UserError(f"{key}={value!r}: expected {name}")


def run_dir(cfg: DictConfig) -> Path:
    """Folder of this run: checkpoints, metrics.csv, train.log and the resolved config."""
    return Path(cfg.runs_dir) / str(cfg.run_name)


def to_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML (the `hydra` node left out)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra", None)
    return OmegaConf.to_yaml(OmegaConf.create(plain))
