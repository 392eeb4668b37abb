"""The units stage through the real runner, on real speech: outputs, ledger, k-means cache, resume."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from synthetic_upstream import run_config, speak_row, speech, write_stage

from pipeline.errors import ConfigError
from pipeline.ledger import errors_table
from pipeline.runner import Runner
from pipeline.shards import Layout
from stages.engines.hubert import HubertFeatures, HubertSpec
from stages.kmeans import save_centroids

SETTINGS = {"max_seconds": 1.7, "kmeans": {"k": 8, "sample_items": 10}}
TEXTS = {"a": "Paris is in France.", "b": "Yes.", "e": "Boil it for six minutes.",
         "long": "Keep your room dark and cool at night."}


def write_upstream(root):
    rows0 = [speak_row("a", speech(TEXTS["a"])), speak_row("b", speech(TEXTS["b"])),
             {**speak_row("corrupt", speech(TEXTS["b"])), "audio": {"bytes": b"not audio", "path": "x.flac"}},
             {**speak_row("empty", speech(TEXTS["b"])), "audio": {"bytes": b"", "path": "e.flac"}}]
    rows1 = [speak_row("e", speech(TEXTS["e"])), speak_row("long", speech(TEXTS["long"])),
             speak_row("unverified", speech(TEXTS["a"]))]
    write_stage(root, "speak_response", "speak", [rows0, rows1])
    verified = [[{"id": r["id"], "transcript": "", "wer": 0.0, "duration": r["duration"], "chars_per_second": 10.0}
                 for r in rows if r["id"] != "unverified"] for rows in (rows0, rows1)]
    write_stage(root, "verify_response", "verify", verified,
                errors=[[], [{"id": "unverified", "reason": "wer_too_high", "detail": "wer=0.9"}]])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("units_run")
    write_upstream(root)
    summaries = Runner(run_config(root, units=SETTINGS)).build()
    return root, summaries


def test_units_rows_and_types(built, hubert):
    root, _ = built
    layout = Layout(root)
    table = pq.read_table(layout.shard("units", 0))
    types = {f.name: f.type for f in table.schema}
    assert pa.types.is_list(types["units"]) and types["units"].value_type == pa.int16()
    assert types["unit_frames"] == pa.int32() and types["units_per_second"] == pa.float32()
    rows = {r["id"]: r for t in (table, pq.read_table(layout.shard("units", 1))) for r in t.to_pylist()}
    assert sorted(rows) == ["a", "b", "e"]
    for item_id, row in rows.items():
        clip = speech(TEXTS[item_id])
        assert row["unit_frames"] == hubert.num_frames(len(clip))
        units = np.array(row["units"])
        assert len(units) and (units >= 0).all() and (units < 8).all()
        assert (units[1:] != units[:-1]).all()  # de-duplicated
        assert row["units_per_second"] == pytest.approx(len(units) / (len(clip) / 16000), rel=1e-5)


def test_bad_audio_is_ledgered_with_a_reason(built):
    root, _ = built
    errors = {r["id"]: r for r in errors_table(Layout(root), "units").to_pylist()}
    assert {k: v["reason"] for k, v in errors.items()} == {
        "corrupt": "corrupt_audio", "empty": "empty_audio", "long": "too_long"}
    assert "max=1.7" in errors["long"]["detail"]


def test_ledger_records_the_model_and_layer(built):
    root, _ = built
    record = json.loads(Layout(root).shard_record("units", 0).read_text())
    versions = record["engine_versions"]
    assert versions["hubert_layer"] == "11"
    assert "random weights" in versions["hubert"]
    assert versions["kmeans"].startswith("k=8 fitted on this run")
    assert record["metrics"]["frames"] > 0


def test_rerun_skips_and_a_fresh_run_is_identical(built, tmp_path):
    root, _ = built
    cached = list((root / "cache" / "kmeans").glob("units-*.npy"))
    assert len(cached) == 1
    again = Runner(run_config(root, units=SETTINGS)).build()
    assert again[0]["shards_run"] == 0
    write_upstream(tmp_path)
    Runner(run_config(tmp_path, units=SETTINGS)).build()
    for index in (0, 1):
        assert pq.read_table(Layout(tmp_path).shard("units", index)).equals(
            pq.read_table(Layout(root).shard("units", index)))


def test_recipe_centroids_from_a_file(tmp_path, hubert):
    write_upstream(tmp_path)
    centroids = np.random.default_rng(0).standard_normal((20, 768)).astype(np.float32)
    sha = save_centroids(tmp_path / "km20.npy", centroids)
    settings = {"kmeans": {"fit": False, "centroids": str(tmp_path / "km20.npy"), "centroids_sha256": sha}}
    Runner(run_config(tmp_path, units=settings)).build()
    units = pq.read_table(Layout(tmp_path).shard("units", 0)).column("units").to_pylist()
    assert all(0 <= u < 20 for row in units for u in row)
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ValueError, match="pinned"):
        bad = {"kmeans": {**settings["kmeans"], "centroids_sha256": "0" * 64}}
        Runner(run_config(tmp_path, units=bad)).build()
    with pytest.raises(ConfigError, match="needs kmeans.centroids"):
        Runner(run_config(tmp_path, units={"kmeans": {"fit": False}})).build()


def test_hubert_identity_depends_on_the_seed():
    assert HubertFeatures(HubertSpec(seed=1, layer=1)).identity != HubertFeatures(HubertSpec(seed=2, layer=1)).identity


def test_reduced_precision_on_cpu_stops_before_any_work(tmp_path):
    write_upstream(tmp_path)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        Runner(run_config(tmp_path, units={"device": "cpu", "precision": "bf16"})).build()
    with pytest.raises(ConfigError, match="must be one of"):
        Runner(run_config(tmp_path, units={"precision": "half"})).build()
    assert not Layout(tmp_path).shard("units", 0).exists()
