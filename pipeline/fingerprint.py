"""Fingerprints: what a shard's content depends on, so reruns skip exactly the done work."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from pipeline.stage import StageSettings


def digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def output_settings(settings: StageSettings) -> dict[str, Any]:
    """The settings that can change a stage's output (runtime knobs removed)."""
    values = dataclasses.asdict(settings)
    for name in settings.RUNTIME_FIELDS | settings.inactive_fields():
        values.pop(name, None)
    return values


def shard_fingerprint(
    stage_kind: str, stage_version: str, settings: StageSettings, inputs: list[str]
) -> str:
    """inputs: the fingerprints of the input shards (or of the raw source chunk)."""
    return digest(
        {
            "kind": stage_kind,
            "version": stage_version,
            "settings": output_settings(settings),
            "inputs": inputs,
        }
    )
