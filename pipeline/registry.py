"""Stage kinds: short names (the identity fingerprints use) mapped to the class that runs them.

The mapping is data (`stage_kinds` in conf/config.yaml); a recipe names kinds, or a class path
("module:Class") directly. Classes import lazily, so a stage's heavy engine loads only where it
runs.
"""
from __future__ import annotations

import importlib

from pipeline.errors import ConfigError

_KINDS: dict[str, str] = {}  # this process's kind -> "module:Class", from the composed config


def register_kinds(kinds: dict[str, str]) -> None:
    for kind, target in kinds.items():
        if not isinstance(target, str) or ":" not in target:
            raise ConfigError(f"stage_kinds.{kind} must be 'module:Class', got {target!r}")
    _KINDS.update(kinds)


def default_kinds() -> dict[str, str]:
    """The shipped conf's `stage_kinds`, for code that runs a stage without composing a config."""
    import yaml

    from pipeline.resources import conf_dir

    return dict(yaml.safe_load((conf_dir() / "config.yaml").read_text()).get("stage_kinds") or {})


def target_of(kind: str) -> str:
    """The class path of a kind: a registered name, or a class path given as the kind itself."""
    if ":" in kind:
        return kind
    if not _KINDS:
        register_kinds(default_kinds())
    try:
        return _KINDS[kind]
    except KeyError:
        raise ConfigError(f"unknown stage kind {kind!r}; known: {sorted(_KINDS)} "
                          "(stage_kinds in conf/config.yaml), or give module:Class") from None


def stage_class(kind_or_target: str):
    target = target_of(kind_or_target)
    module_name, class_name = target.split(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"stage class {target!r} cannot be imported: {type(exc).__name__}: {exc}") from None


def own_packages() -> frozenset[str]:
    """Top-level packages of the registered stage classes: their loggers are the pipeline's own."""
    return frozenset(target.split(".", 1)[0].split(":", 1)[0] for target in _KINDS.values())
