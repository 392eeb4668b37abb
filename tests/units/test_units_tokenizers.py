"""Both tokenizers in one build, through the real runner on real speech: two units nodes (HuBERT +
k-means and CosyVoice 2's S3 tokenizer, random weights), their columns, frame rates and ledger;
the release-data wiring (another audio column, no verify stage)."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from synthetic_upstream import SCHEMAS, flac_struct, speak_row, speech, write_stage
from units_nodes import nodes_config, rows

from pipeline.errors import ConfigError
from pipeline.runner import Runner
from pipeline.shards import Layout
from stages import audio

TEXTS = {"a": "Keep your room dark and cool at night.", "b": "Paris is in France.",
         "c": "Boil it for six minutes, then let it rest.", "unverified": "Yes."}
NODES = {"units": {"kmeans": {"k": 8, "sample_items": 10}}, "units_s3": {"tokenizer": "cosyvoice2"}}


def seconds(item_id: str) -> float:
    return len(speech(TEXTS[item_id])) / 16_000


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("two_tokenizers")
    clips = [speak_row(i, speech(t)) for i, t in TEXTS.items()]
    write_stage(root, "speak_response", "speak", [clips])
    write_stage(root, "verify_response", "verify",
                [[{"id": r["id"], "transcript": "", "wer": 0.0, "duration": r["duration"], "chars_per_second": 10.0}
                  for r in clips if r["id"] != "unverified"]],
                errors=[[{"id": "unverified", "reason": "wer_too_high", "detail": "wer=0.9"}]])
    Runner(nodes_config(root, NODES)).build()
    return root


def test_hubert_node_keeps_its_columns_and_50_frames_a_second(built):
    table = pq.read_table(Layout(built).shard("units", 0))
    assert table.schema.names == ["id", "units", "unit_frames", "units_per_second"]
    got = rows(built, "units")
    assert sorted(got) == ["a", "b", "c"]
    for item_id, row in got.items():
        assert abs(row["unit_frames"] - 50 * seconds(item_id)) <= 2  # a 25 ms window at a 20 ms hop
        assert all(0 <= u < 8 for u in row["units"])


def test_cosyvoice2_node_gives_25_frames_a_second_of_6561_tokens(built):
    schema = pq.read_schema(Layout(built).shard("units_s3", 0))
    assert schema.names == ["id", "units", "unit_frames", "units_per_second", "unit_vocab_size", "unit_rate_hz",
                            "unit_model"]
    assert schema.field("units").type == pa.list_(pa.int16())
    assert (schema.field("unit_vocab_size").type, schema.field("unit_rate_hz").type,
            schema.field("unit_model").type) == (pa.int32(), pa.float32(), pa.string())
    got = rows(built, "units_s3")
    assert sorted(got) == ["a", "b", "c"]  # only verified clips
    for item_id, row in got.items():
        units = np.array(row["units"])
        assert abs(row["unit_frames"] - 25 * seconds(item_id)) <= 1  # frames before repeats are merged
        assert ((units >= 0) & (units < 6561)).all() and (units[1:] != units[:-1]).all()
        assert 1 < len(units) <= row["unit_frames"]
        assert row["units_per_second"] == pytest.approx(len(units) / seconds(item_id), rel=1e-5)
        assert (row["unit_vocab_size"], row["unit_rate_hz"]) == (6561, 25.0)
        assert row["unit_model"] == "speech_tokenizer_v2_25hz random weights (seed 7)"
    assert len({u for row in got.values() for u in row["units"]}) > 20  # random weights still spread over the vocabulary


def test_each_node_ledgers_its_own_engine(built):
    layout = Layout(built)
    s3 = json.loads(layout.shard_record("units_s3", 0).read_text())
    hubert = json.loads(layout.shard_record("units", 0).read_text())
    assert s3["engine_versions"]["s3_tokenizer"].startswith("speech_tokenizer_v2_25hz random weights")
    assert "hubert" not in s3["engine_versions"] and "s3_tokenizer" not in hubert["engine_versions"]
    assert s3["errors"] == 0 and s3["metrics"]["frames"] > 0
    assert [p.name.split("-")[0] for p in (built / "cache" / "kmeans").glob("*.npy")] == ["units"]


def test_release_wiring_other_audio_column_and_no_verify_stage(tmp_path, monkeypatch):
    monkeypatch.setitem(SCHEMAS, "release", [("speech", audio.AUDIO_STRUCT)])
    write_stage(tmp_path, "release_audio", "release",
                [[{"id": i, "speech": flac_struct(speech(t), i)} for i, t in TEXTS.items()]])
    node = {"tokenizer": "cosyvoice2", "speak_stage": "release_audio", "audio_column": "speech", "verify_stage": None}
    Runner(nodes_config(tmp_path, {"assistant_units": node}, extra_upstream=("release_audio",))).build()
    got = rows(tmp_path, "assistant_units")
    assert sorted(got) == sorted(TEXTS)  # nothing verified away: every clip of the audio stage
    assert all(abs(r["unit_frames"] - 25 * seconds(i)) <= 1 for i, r in got.items())


def test_an_unknown_tokenizer_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="stages.units_x.*tokenizer must be one of hubert_kmeans, cosyvoice2"):
        nodes_config(tmp_path, {"units_x": {"tokenizer": "encodec"}})
