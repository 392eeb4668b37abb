"""A data_root belongs to one build of this tool: the builder writes only into a folder that is
new, empty, or marked as such a build, and cleans only the temporary files it names itself."""
from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.errors import ConfigError

MARKER = ".instructs2s-build"
# Temp files of atomic writes: `.<name>.tmp-<pid>` (pipeline.shards.atomic_write_bytes).
_TEMP_NAME = re.compile(r"^\..+\.tmp-\d+$")
# Folders under data_root that a build writes; temp files are looked for in these only.
OWNED_DIRS = ("stages", "manifests", "data", "train", "export", "plots", "logs", "cache")


def check_path(data_root: str) -> Path:
    if not str(data_root).strip():
        raise ConfigError("data_root is empty; give the folder of the build, e.g. data_root=data")
    root = Path(data_root).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"data_root {root} is a file, not a folder")
    return root


def is_build(root: Path) -> bool:
    # A build made before the marker existed is recognised by its dataset record.
    return (root / MARKER).is_file() or (root / "manifests" / "dataset.json").is_file()


def holds_only_ours(root: Path) -> bool:
    """Only folders a build owns (a launcher may write logs/ before the first job starts)."""
    return all(p.name in OWNED_DIRS and p.is_dir() for p in root.iterdir())


def claim(data_root: str) -> Path:
    """Make data_root ours for a build, or refuse with one line."""
    root = check_path(data_root)
    if root.exists() and not holds_only_ours(root) and not is_build(root):
        raise ConfigError(f"data_root {root} is not empty and holds no build of this tool "
                          f"(no {MARKER} file): choose a new or empty folder")
    root.mkdir(parents=True, exist_ok=True)
    marker = root / MARKER
    if not marker.exists():
        marker.write_text(json.dumps({"tool": "instructs2s"}) + "\n")
    return root


def require_build(data_root: str) -> Path:
    """For commands that read a build (status, errors, train): one line when there is none."""
    root = check_path(data_root)
    if not root.is_dir() or not is_build(root):
        raise ConfigError(f"data_root {root} holds no build of this tool; run `instructs2s build "
                          f"data_root={data_root}` first")
    return root


def remove_stale_temp_files(root: Path) -> int:
    """Leftovers of a killed run's atomic writes, in the folders a build owns; never read."""
    removed = 0
    for name in OWNED_DIRS:
        folder = root / name
        if not folder.is_dir():
            continue
        for tmp in folder.rglob(".*.tmp-*"):
            if tmp.is_file() and _TEMP_NAME.match(tmp.name):
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed
