"""What ingest selected, as counts and an id digest, checked against the checked-in manifest."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from pipeline.resources import manifests_dir
from pipeline.shards import atomic_write_json

log = logging.getLogger(__name__)
REPO_MANIFEST = manifests_dir() / "instructs2s-200k.yaml"


def selection_summary(shard_paths: list[str]) -> dict[str, dict]:
    digests: dict[str, hashlib._Hash] = {}
    counts: dict[str, int] = {}
    for path in shard_paths:
        table = pq.read_table(path, columns=["id", "source"])
        for item_id, source in zip(table["id"].to_pylist(), table["source"].to_pylist()):
            digests.setdefault(source, hashlib.sha256()).update(item_id.encode() + b"\n")
            counts[source] = counts.get(source, 0) + 1
    return {s: {"count": counts[s], "ids_sha256": digests[s].hexdigest()} for s in sorted(counts)}


def manifest_expected() -> dict:
    """The checked-in manifest's `expected` block: per source part, its count and id digest once frozen."""
    if not REPO_MANIFEST.exists():
        return {}
    return yaml.safe_load(REPO_MANIFEST.read_text()).get("expected") or {}


def write_selection(data_root: str, source_name: str, shard_paths: list[str]) -> dict:
    summary = {"source": source_name, "parts": selection_summary(shard_paths)}
    if source_name == "recipe":
        expected = manifest_expected()
        pinned = {k: v for k, v in expected.items() if v and v.get("ids_sha256")}
        if pinned:
            summary["matches_manifest"] = all(summary["parts"].get(k) == v for k, v in pinned.items())
            if not summary["matches_manifest"]:
                log.warning("the selected items differ from %s: compare %s/manifests/ingest/selection.json",
                            REPO_MANIFEST, data_root)
    atomic_write_json(Path(data_root) / "manifests" / "ingest" / "selection.json", summary)
    return summary
