"""The published splits: membership by id hash, the hub's file layout, byte-identical and
shard-size independent output, a no-op rerun, an atomic swap, and the settings' checks."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from package_upstream import TRAINED
from synthetic_upstream import run_config

from pipeline.errors import ConfigError
from pipeline.shards import Layout
from stages import package_train
from stages.package import training_features
from stages.package_train import check_fractions, decode_free, publish_splits, split_of

FRACTIONS = {"validation": 0.1, "test": 0.5}  # puts the fixture's 4 items in all three splits


def publish(shards, root, fractions=FRACTIONS, rows_per_file=1, rows_per_row_group=100):
    return publish_splits([str(p) for p in shards], Layout(root), decode_free(training_features()), fractions,
                          rows_per_file, rows_per_row_group, root / "manifests" / "splits.json")


def contents(root):
    return {p.name: p.read_bytes() for p in sorted((root / "data").glob("*"))}


@pytest.fixture(scope="module")
def package_shards(package_run):
    root, _ = package_run
    return [Layout(root).shard("package", i) for i in (0, 1)]


def test_split_of_is_stable_and_proportional():
    ids = [f"alpaca-{i:06d}" for i in range(20000)]
    splits = [split_of(i, {"validation": 0.02, "test": 0.02}) for i in ids]
    assert splits == [split_of(i, {"validation": 0.02, "test": 0.02}) for i in ids]
    for name, share in (("validation", 0.02), ("test", 0.02), ("train", 0.96)):
        assert splits.count(name) / len(ids) == pytest.approx(share, abs=0.005), name
    no_test = [split_of(i, {"validation": 0.02}) for i in ids]
    assert [i for i, s in zip(ids, no_test) if s == "validation"] == \
        [i for i, s in zip(ids, splits) if s == "validation"]  # validation never moves with test's fraction


def test_files_in_the_hub_layout(package_shards, tmp_path):
    expected = {i: split_of(i, FRACTIONS) for i in TRAINED}
    assert sorted(expected.values()) == ["test", "test", "train", "validation"]
    published = publish(package_shards, tmp_path)
    assert sorted(contents(tmp_path)) == ["test-00000-of-00002.parquet", "test-00001-of-00002.parquet",
                                          "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]
    for name, split in published.items():
        ids = [i for f in split.files for i in pq.read_table(f, columns=["id"])["id"].to_pylist()]
        assert sorted(ids) == sorted(i for i, s in expected.items() if s == name) and split.rows == len(ids)
        assert split.bytes == sum(f.stat().st_size for f in split.files)
    meta = pq.read_schema(published["train"].files[0]).metadata[b"huggingface"]
    assert b'"decode": false' in meta  # files read as plain Parquet give {bytes, path} too


def test_load_dataset_finds_the_splits_without_a_card(package_shards, tmp_path):
    from datasets import load_dataset

    publish(package_shards, tmp_path / "build")
    ds = load_dataset(str(tmp_path / "build"), cache_dir=str(tmp_path / "hf"))  # the hub's file-name rules
    assert {name: len(split) for name, split in ds.items()} == {"train": 1, "validation": 1, "test": 2}
    assert set(ds["test"][0]["instruction_audio"]) == {"bytes", "path"}


def test_output_does_not_depend_on_package_shard_sizes(package_shards, tmp_path):
    one = tmp_path / "one-shard"
    one.mkdir()
    pq.write_table(pa.concat_tables([pq.read_table(p) for p in package_shards]), one / "shard-00000.parquet")
    publish(package_shards, tmp_path / "a", rows_per_row_group=1)
    publish([one / "shard-00000.parquet"], tmp_path / "b", rows_per_row_group=1)
    assert contents(tmp_path / "a") == contents(tmp_path / "b")
    train = pq.ParquetFile(tmp_path / "a" / "data" / "train-00000-of-00001.parquet").metadata
    assert train.num_row_groups == train.num_rows == 1


def test_rerun_is_a_no_op_and_a_redo_is_byte_identical(package_shards, tmp_path):
    publish(package_shards, tmp_path)
    first = contents(tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "data").glob("*")}
    publish(package_shards, tmp_path)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "data").glob("*")} == stamps
    (tmp_path / "data" / "test-00001-of-00002.parquet").unlink()
    publish(package_shards, tmp_path)
    assert contents(tmp_path) == first
    publish(package_shards, tmp_path, fractions={"validation": 0.0, "test": 0.0}, rows_per_file=10)
    assert sorted(contents(tmp_path)) == ["train-00000-of-00001.parquet"]  # stale files of other splits gone


def test_a_failed_publish_leaves_the_previous_files(package_shards, tmp_path, monkeypatch):
    publish(package_shards, tmp_path)
    first = contents(tmp_path)

    def crash(self, batch):
        raise OSError("disk full")

    monkeypatch.setattr(package_train.SplitWriter, "add", crash)
    with pytest.raises(OSError, match="disk full"):
        publish(package_shards, tmp_path, rows_per_file=10)
    assert contents(tmp_path) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "manifests"]  # no staging folder left


def test_the_old_train_folder_is_removed(package_shards, tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "train-00000-of-00002.parquet").write_bytes(b"old")
    publish(package_shards, tmp_path)
    assert not (tmp_path / "train").exists()


@pytest.mark.parametrize("splits, message", [
    ({"dev": 0.1}, "unknown split"), ({"validation": 1.5}, "fraction in"),
    ({"validation": 0.6, "test": 0.4}, "leave items for train"),
])
def test_bad_fractions_are_config_errors(splits, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        check_fractions(splits)
    with pytest.raises(ConfigError, match=message):
        run_config(tmp_path, package={"splits": splits}, only=["package"])
