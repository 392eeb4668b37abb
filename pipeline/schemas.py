"""Each configured stage's shard schema, as checked-in JSON under manifests/schemas/<recipe>/."""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.registry import stage_class
from pipeline.resources import manifests_dir

SCHEMA_DIR = manifests_dir() / "schemas"


def stage_schemas(run: RunConfig) -> dict[str, list[dict]]:
    out = {}
    for node in run.stages:
        schema = stage_class(node.target or node.kind)(node.name, node.settings, run.context).output_schema()
        out[node.name] = [{"name": f.name, "type": str(f.type)} for f in schema]
    return out


def recipe_dir(run: RunConfig) -> Path:
    """One folder per recipe: two recipes may give one stage name different rows (package)."""
    return SCHEMA_DIR / run.root.recipe


def schema_drift(run: RunConfig, directory: Path | None = None) -> list[str]:
    """Stages whose checked-in schema differs from (or is missing for) what the code writes."""
    directory = directory or recipe_dir(run)
    drift = []
    for name, fields in stage_schemas(run).items():
        path = directory / f"{name}.json"
        if not path.exists() or json.loads(path.read_text()).get("fields") != fields:
            drift.append(name)
    return drift


def write_schemas(run: RunConfig, directory: Path | None = None) -> list[Path]:
    directory = directory or recipe_dir(run)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fields in stage_schemas(run).items():
        path = directory / f"{name}.json"
        path.write_text(json.dumps({"stage": name, "fields": fields}, indent=1) + "\n")
        paths.append(path)
    return paths
