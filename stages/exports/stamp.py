"""A format's export is redone only when its inputs changed: the stamp in its folder records a
digest of the split files (name, size, modification time), the exporter's version, the settings
and the folder, and the files it wrote; a rerun with the same digest and all files present
skips the export (its bytes would be the same)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from pipeline.shards import atomic_write_json
from stages.exports.settings import ExportSettings

STAMP = ".export-stamp.json"


def digest(fmt: str, version: str, splits: dict[str, list[Path]], out_dir: Path,
           settings: ExportSettings) -> str:
    inputs = {split: [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
              for split, files in splits.items()}
    knobs = {k: v for k, v in asdict(settings).items() if k != "formats"}
    text = json.dumps({"format": fmt, "version": version, "inputs": inputs, "settings": knobs,
                       "out_dir": str(out_dir)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def is_current(out_dir: Path, key: str) -> bool:
    try:
        stamp = json.loads((out_dir / STAMP).read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("digest") != key:
        return False
    for name, size in stamp.get("files", {}).items():
        path = out_dir / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def record(out_dir: Path, key: str, written: set[Path]) -> Path:
    files = {str(p.relative_to(out_dir)): p.stat().st_size for p in written}
    atomic_write_json(out_dir / STAMP, {"digest": key, "files": files})
    return out_dir / STAMP
