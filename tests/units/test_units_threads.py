"""units computes with its own thread count, whatever earlier stages of the process left behind.

Loading CTranslate2's Whisper (the verify stages, run in-process before units) sets OpenMP's
thread count, and lands in torch's pool when torch was loaded first. HuBERT's float sums are split
across threads, so features, centroids and units used to depend on what had run before units in
the same process. Here earlier engines are stood in for by setting the count directly.
"""
import pyarrow.parquet as pq
import pytest
import torch
from synthetic_upstream import run_config, speak_row, speech, write_stage

from pipeline.errors import ConfigError
from pipeline.fingerprint import output_settings
from pipeline.runner import Runner
from pipeline.shards import Layout
from stages.units import UnitsSettings

SETTINGS = {"kmeans": {"k": 8, "sample_items": 10}}
TEXTS = {"a": "Paris is in France.", "b": "Boil it for six minutes."}


def write_upstream(root):
    rows = [speak_row(item_id, speech(text)) for item_id, text in TEXTS.items()]
    write_stage(root, "speak_response", "speak", [rows])
    write_stage(root, "verify_response", "verify", [[
        {"id": r["id"], "transcript": "", "wer": 0.0, "duration": r["duration"], "chars_per_second": 10.0}
        for r in rows]])


def build_with_threads_left_at(root, left: int) -> tuple[bytes, bytes]:
    """(units shard, fitted centroids) of a build in a process whose torch pool has `left` threads."""
    write_upstream(root)
    before = torch.get_num_threads()
    torch.set_num_threads(left)
    try:
        Runner(run_config(root, units=SETTINGS)).build()
        assert torch.get_num_threads() == left  # the stage put back what it found
    finally:
        torch.set_num_threads(before)
    (centroids,) = (root / "cache" / "kmeans").glob("units-*.npy")
    return Layout(root).shard("units", 0).read_bytes(), centroids.read_bytes()


def test_units_do_not_depend_on_the_threads_earlier_stages_left(tmp_path):
    one = build_with_threads_left_at(tmp_path / "one", 1)
    three = build_with_threads_left_at(tmp_path / "three", 3)
    assert one[1] == three[1], "k-means centroids differ"
    assert one[0] == three[0], "units shards differ"
    assert pq.read_table(Layout(tmp_path / "one").shard("units", 0)).num_rows == 2


def test_the_thread_count_is_part_of_the_fingerprint():
    assert "threads" not in UnitsSettings.RUNTIME_FIELDS
    assert output_settings(UnitsSettings(threads=1)) != output_settings(UnitsSettings(threads=2))
    assert UnitsSettings().threads >= 1 and "decode_threads" in UnitsSettings.RUNTIME_FIELDS


def test_a_thread_count_below_one_stops_before_any_work(tmp_path):
    write_upstream(tmp_path)
    with pytest.raises(ConfigError, match="threads"):
        Runner(run_config(tmp_path, units={**SETTINGS, "threads": 0})).build()
    assert not Layout(tmp_path).shard("units", 0).exists()
