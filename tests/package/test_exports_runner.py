"""The export runner: settings checked up front, splits found in either published layout, a
rerun skipped when nothing changed, byte-identical when redone, and no stale file left behind
when an item or a whole split goes away."""
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from package_upstream import TRAINED

from pipeline.errors import ConfigError
from stages.exports import EXPORTERS, discover_splits, export_data_root
from stages.exports.settings import FORMATS, ExportSettings
from stages.exports.stamp import STAMP


def all_rows(root):
    return pa.concat_tables([pq.read_table(f) for files in discover_splits(root).values() for f in files])


def files_of(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_settings_name_the_known_formats():
    assert set(EXPORTERS) == set(FORMATS)
    with pytest.raises(ValueError, match="unknown format 'tfrecord'; known: llama_omni, instructs2s_release"):
        ExportSettings(formats=["tfrecord"])
    with pytest.raises(ValueError, match="twice"):
        ExportSettings(formats=["lhotse", "lhotse"])
    with pytest.raises(ValueError, match="shard_items"):
        ExportSettings(webdataset_shard_items=0)
    assert ExportSettings().formats == ["llama_omni"]


def test_splits_from_either_layout(tmp_path):
    for name in ("train/train-00000-of-00002.parquet", "train/train-00001-of-00002.parquet"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).touch()
    assert {k: [p.name for p in v] for k, v in discover_splits(tmp_path).items()} == {
        "train": ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]}
    (tmp_path / "data").mkdir()
    for name in ("data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet"):
        (tmp_path / name).touch()
    assert {k: [p.parent.name for p in v] for k, v in discover_splits(tmp_path).items()} == {
        "train": ["data"], "validation": ["data"]}
    with pytest.raises(ConfigError, match="unknown export format"):
        export_data_root(tmp_path, "tfrecord")
    with pytest.raises(ConfigError, match="holds no training shards"):
        export_data_root(tmp_path / "empty", "llama_omni")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not an export")
    with pytest.raises(ConfigError, match="not empty and holds no export"):
        export_data_root(tmp_path, "llama_omni", out_dir=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").is_file()


def test_rerun_skips_redo_is_identical_and_stale_files_go(package_run, tmp_path):
    build = tmp_path / "build"
    (build / "data").mkdir(parents=True)
    rows = all_rows(package_run[0])
    pq.write_table(rows, build / "data" / "train-00000-of-00001.parquet")
    pq.write_table(rows.slice(0, 1), build / "data" / "validation-00000-of-00001.parquet")
    settings = ExportSettings(webdataset_shard_items=2)
    outs = {fmt: export_data_root(build, fmt, settings) for fmt in FORMATS}
    first = {fmt: files_of(out) for fmt, out in outs.items()}
    for split in ("train", "validation"):  # every split, each in its own files
        assert (outs["llama_omni"] / split / "question.json").is_file()
        assert (outs["instructs2s_release"] / split / "conversations.json").is_file()
        assert (outs["lhotse"] / f"instructs2s_cuts_{split}.jsonl.gz").is_file()
        assert (outs["webdataset"] / split / f"{split}-000000.tar").is_file()
    mtimes = {p: p.stat().st_mtime_ns for out in outs.values() for p in out.rglob("*") if p.is_file()}

    assert all(export_data_root(build, fmt, settings) == out for fmt, out in outs.items())
    assert {p: p.stat().st_mtime_ns for out in outs.values() for p in out.rglob("*") if p.is_file()} == mtimes

    for out in outs.values():
        (out / STAMP).unlink()  # forces the export to run again
    for fmt in FORMATS:
        export_data_root(build, fmt, settings)
    assert {fmt: files_of(out) for fmt, out in outs.items()} == first

    kept = TRAINED[1:]
    pq.write_table(rows.filter(pc.is_in(rows["id"], pa.array(kept))),
                   build / "data" / "train-00000-of-00001.parquet")
    (build / "data" / "validation-00000-of-00001.parquet").unlink()
    for fmt in FORMATS:
        export_data_root(build, fmt, settings)
    for fmt, out in outs.items():
        names = " ".join(str(p) for p in files_of(out))
        assert "validation" not in names, fmt
        assert TRAINED[0] not in names or fmt == "webdataset", fmt  # shard names carry no ids
    assert len(list((outs["llama_omni"] / "train" / "wavs").iterdir())) == len(kept)
    assert len(list((outs["instructs2s_release"] / "train" / "wav").iterdir())) == len(kept)
    assert len(list((outs["lhotse"] / "audio" / "train").iterdir())) == 2 * len(kept)
    assert sorted(p.name for p in (outs["webdataset"] / "train").iterdir()) == ["train-000000.tar", "train-000001.tar"]
