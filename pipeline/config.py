"""Validation of the composed Hydra config: a wrong key or type fails before any work."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.errors import ConfigError
from pipeline.rates import EstimateSettings
from pipeline.registry import register_kinds, stage_class, target_of
from pipeline.stage import StageSettings


@dataclass
class ExecutorSettings:
    name: str = "local"
    address: Optional[str] = None  # ray: cluster address; None starts a local instance
    num_cpus: Optional[int] = None  # ray: CPUs of a local instance
    max_retries: int = 2  # ray: how often a failed shard task is retried elsewhere
    stage_resources: dict[str, Any] = field(default_factory=dict)  # ray: per-stage {num_cpus, num_gpus, workers}
    runtime_env: dict[str, Any] = field(default_factory=dict)  # ray: job runtime_env (working_dir, env_vars; no secrets)
    dashboard: bool = False  # ray: start the dashboard with a local instance (slower start)


@dataclass
class RootSettings:
    profile: str = MISSING
    data_root: str = MISSING
    shard_size: int = MISSING
    seed: int = MISSING
    model_cache: str = MISSING
    offline: bool = False
    progress: bool = True
    progress_log_s: float = 30.0
    log_level: str = "INFO"
    source: Any = None
    recipe: str = "custom"  # which conf/recipe/ file composed the stages (for the record; the graph is `stages`)
    stage_kinds: dict[str, str] = field(default_factory=dict)  # kind -> "module:Class"
    estimate: EstimateSettings = field(default_factory=EstimateSettings)  # plan's GPU estimate of the recipe
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    stages: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        if self.progress_log_s <= 0:
            raise ValueError(f"progress_log_s must be > 0, got {self.progress_log_s}")
        if not str(self.data_root).strip():
            raise ValueError("data_root is empty; give the folder of the build, e.g. data_root=data")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass
class StageNode:
    name: str
    kind: str  # the short name fingerprints use
    settings: StageSettings
    target: str = ""  # "module:Class" that runs it (pipeline.registry); "" means the kind's registered class


@dataclass
class RunConfig:
    root: RootSettings
    stages: list[StageNode]  # in config order
    only: list[str] | None
    resolved: dict  # the whole config, for the dataset record
    shards: tuple[int, int] | None = None  # [start, end): run only these shard indices (a job array's slice)

    @property
    def context(self) -> dict[str, Any]:
        return {
            "data_root": str(Path(self.root.data_root).resolve()),
            "seed": self.root.seed,
            "model_cache": str(Path(self.root.model_cache).expanduser().resolve()),
            "shard_size": self.root.shard_size,
        }


def _merge(schema, node, where: str):
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            raise ConfigError(f"{where}: missing value for {', '.join(missing)}")
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:  # first: its validation errors are ValueErrors too
        raise ConfigError(f"{where}: {exc}".splitlines()[0] + f" (key: {getattr(exc, 'full_key', '?')})") from None
    except ValueError as exc:  # a settings class's own range/enum check (__post_init__)
        raise ConfigError(f"{where}: {exc}") from None


def settings_from_dict(kind: str, values: dict, where: str):
    """A stage kind's typed settings from plain values (a config node, or a task sent as JSON)."""
    return _merge(stage_class(kind).Settings, values, where)


def validate(cfg: DictConfig) -> RunConfig:
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra", None)
    stages_node = dict(plain.get("stages") or {})
    only = stages_node.pop("only", None)
    if isinstance(only, str):  # stages.only=ingest: one stage, as if written [ingest]
        only = [only]
    shards = _shard_range(stages_node.pop("shards", None))
    absent = set(stages_node.pop("absent", None) or [])
    root = _merge(RootSettings, {**plain, "stages": {}}, "config")
    register_kinds(root.stage_kinds)
    if root.shard_size < 1:
        raise ConfigError(f"shard_size must be >= 1, got {root.shard_size}")

    nodes = []
    for name, node in stages_node.items():
        if node is None or name in absent:
            continue  # removed with ~stages.NAME, or a recipe without it (a profile may still set its values)
        if not isinstance(node, dict) or "kind" not in node:
            raise ConfigError(f"stages.{name}: needs a 'kind' (one of the stage kinds)")
        settings = settings_from_dict(node["kind"], node, f"stages.{name}")
        nodes.append(StageNode(name=name, kind=node["kind"], settings=settings, target=target_of(node["kind"])))
    names = [n.name for n in nodes]
    if only is not None:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ConfigError(f"stages.only names unknown stages {unknown}; known: {names}")
    plain["stages"] = {**{k: v for k, v in stages_node.items() if k not in absent}, "only": only,
                       "shards": list(shards) if shards else None, "absent": sorted(absent)}
    return RunConfig(root=root, stages=nodes, only=only, resolved=plain, shards=shards)


def _shard_range(value) -> tuple[int, int] | None:
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not 0 <= value[0] < value[1]):
        raise ConfigError(f"stages.shards must be [start, end] with 0 <= start < end, got {value!r}")
    return value[0], value[1]
