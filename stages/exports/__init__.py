"""Exports of a finished build for other trainers, each under ${data_root}/export/<format>/:
llama_omni, instructs2s_release, lhotse, webdataset (docs/exports.md).

Every exporter streams the training rows of each split (any split names) and returns the files
it wrote; the runner prunes what it did not write and stamps the folder, so a rerun on the same
inputs is skipped and a rerun on changed inputs leaves no stale file.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.shards import Layout
from stages.exports import instructs2s_release, lhotse_manifests, llama_omni, stamp, webdataset_shards
from stages.exports.files import count_rows, prune
from stages.exports.settings import ExportSettings

log = logging.getLogger(__name__)

# Each module has export(splits, out_dir, settings) -> written files, describe(folder) and VERSION.
EXPORTERS = {
    "llama_omni": llama_omni,
    "instructs2s_release": instructs2s_release,
    "lhotse": lhotse_manifests,
    "webdataset": webdataset_shards,
}
def split_folders(data_root: Path) -> tuple[Path, Path]:
    """data/{split}-*.parquet wins over the older train/train-*.parquet."""
    layout = Layout(data_root)
    return layout.splits_dir(), layout.legacy_splits_dir()


def run_exports(splits: dict[str, list[Path]], out_root: Path,
                settings: ExportSettings) -> list[tuple[str, Path, str]]:
    """The formats in settings.formats, each into out_root/<format>/: a list of (format, its
    folder, a line for the dataset card)."""
    return [export_format(fmt, splits, out_root / fmt, settings, f"{out_root.name}/{fmt}")
            for fmt in settings.formats]


def export_format(fmt: str, splits: dict[str, list[Path]], out_dir: Path, settings: ExportSettings,
                  shown_as: str | None = None) -> tuple[str, Path, str]:
    exporter, out_dir = EXPORTERS[fmt], out_dir.absolute()
    key = stamp.digest(fmt, exporter.VERSION, splits, out_dir, settings)
    if stamp.is_current(out_dir, key):
        log.info("export %s: inputs unchanged, %s kept", fmt, out_dir)
    else:
        written = exporter.export(splits, out_dir, settings)
        removed = prune(out_dir, written | {out_dir / stamp.STAMP})
        stamp.record(out_dir, key, written)
        log.info("export %s: %d files in %s (%d stale removed)", fmt, len(written), out_dir, removed)
    counts = ", ".join(f"{split}: {count_rows(files):,} items" for split, files in splits.items())
    return fmt, out_dir, f"{exporter.describe(shown_as or str(out_dir))} ({counts})"


def discover_splits(data_root: Path) -> dict[str, list[Path]]:
    """Split name -> its Parquet files in a finished build; the name is the file name's part
    before the first '-' (train-00000-of-00002.parquet: train)."""
    splits: dict[str, list[Path]] = {}
    for folder in reversed(split_folders(data_root)):  # the preferred folder last, so its files win
        found: dict[str, list[Path]] = {}
        for path in sorted(folder.glob("*.parquet")):
            found.setdefault(path.name.split("-", 1)[0], []).append(path)
        for split in found.keys() & splits.keys():
            log.warning("split %s is in both %s/ and another folder: exporting %s/", split, folder, folder)
        splits.update(found)
    return splits


def export_data_root(data_root: Path, fmt: str, settings: ExportSettings | None = None,
                     out_dir: Path | None = None) -> Path:
    """`instructs2s export FORMAT`: one format of a finished build, into out_dir (default
    ${data_root}/export/<format>/); returns that folder."""
    data_root = Path(data_root)
    if fmt not in EXPORTERS:
        raise ConfigError(f"unknown export format {fmt!r}; known: {', '.join(EXPORTERS)}")
    try:
        settings = dataclasses.replace(settings or ExportSettings(), formats=[fmt])
    except ValueError as exc:  # the format's package is missing, or a knob is out of range
        raise ConfigError(str(exc)) from None
    splits = discover_splits(data_root)
    if not splits:
        raise ConfigError(f"{data_root} holds no training shards (data/*.parquet or train/*.parquet): "
                          "build the dataset first")
    target = Path(out_dir) if out_dir else Layout(data_root).export_dir(fmt)
    # The export removes every file it did not write: never in a folder of someone else's.
    if out_dir and target.is_dir() and any(target.iterdir()) and not (target / stamp.STAMP).is_file():
        raise ConfigError(f"{target} is not empty and holds no export of this tool: choose a new or empty folder")
    return export_format(fmt, splits, target, settings)[1]
