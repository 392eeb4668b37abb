"""Loading the trainer's Hydra config outside of `@hydra.main` (tests, bench, infer)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_NAME = "train"


def conf_dir() -> Path:
    """The repository's `conf/` folder (override with OMNI_CONF_DIR)."""
    env = os.environ.get("OMNI_CONF_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "conf"


def load_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose `conf/train.yaml` with Hydra-style overrides, e.g. ["data_root=/d", "train=full"]."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name=CONFIG_NAME, overrides=list(overrides or []))
    return cfg


def run_dir(cfg: DictConfig) -> Path:
    """Folder of this run: checkpoints, metrics.csv, train.log and the resolved config."""
    return Path(cfg.runs_dir) / str(cfg.run_name)


def to_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML (the `hydra` node left out)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra", None)
    return OmegaConf.to_yaml(OmegaConf.create(plain))
