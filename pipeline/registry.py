"""Stage kinds by name, imported lazily so a stage's heavy engine loads only where it runs."""
from __future__ import annotations

import importlib

from pipeline.errors import ConfigError

KINDS: dict[str, str] = {
    "ingest": "stages.ingest:IngestStage",
    "rewrite": "stages.rewrite:RewriteStage",
    "respond": "stages.respond:RespondStage",
    "speak": "stages.speak:SpeakStage",
    "verify": "stages.verify:VerifyStage",
    "units": "stages.units:UnitsStage",
    "package": "stages.package:PackageStage",
    "passthrough": "pipeline.testing:PassthroughStage",
    "generated": "pipeline.testing:GeneratedSource",
}


def stage_class(kind: str):
    try:
        module_name, class_name = KINDS[kind].split(":")
    except KeyError:
        raise ConfigError(f"unknown stage kind {kind!r}; known: {sorted(KINDS)}") from None
    return getattr(importlib.import_module(module_name), class_name)
