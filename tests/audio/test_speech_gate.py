"""The speech gate through the real runner on real Piper speech: every score stored (DNSMOS,
speaker embedding), DNSMOS bounds ledgered with the score, and re-filtering from the score cache."""
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "units"))

from synthetic_upstream import speak_row, speech, write_stage  # noqa: E402

from pipeline.config import validate  # noqa: E402
from pipeline.errors import ConfigError  # noqa: E402
from pipeline.ledger import errors_table  # noqa: E402
from pipeline.runner import Runner  # noqa: E402
from pipeline.shards import Layout  # noqa: E402
from stages.verify import DNSMOS_COLUMNS  # noqa: E402

TEXTS = {"a": "Hey, so, can you tell me how we can reduce air pollution in big cities?",
         "b": "The train leaves at nine in the morning and arrives around noon."}
GATE = {"kind": "verify", "scores": ["dnsmos", "speaker_embedding"], "dnsmos_hop_s": 9.01, "threads": 2}


def gate_config(root, **bounds):
    stages = {"ingest": {"kind": "generated"},
              "rewrite": {"kind": "passthrough", "upstream": "ingest"},
              "speak_instruction": {"kind": "passthrough", "upstream": "ingest"},
              "verify_instruction": {**GATE, "score_cache_dir": str(root / "cache" / "verify"), **bounds},
              "only": ["verify_instruction"]}
    return validate(OmegaConf.create({"profile": "test", "data_root": str(root), "shard_size": 100, "seed": 7,
                                      "model_cache": str(root / "models"), "progress": False, "stages": stages}))


def shard_metrics(root) -> dict:
    return json.loads(Layout(root).shard_record("verify_instruction", 0).read_text())["metrics"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech_gate")
    write_stage(root, "speak_instruction", "speak", [[speak_row(i, speech(t)) for i, t in TEXTS.items()]])
    write_stage(root, "rewrite", "rewrite", [[{"id": i, "instruction_spoken": t} for i, t in TEXTS.items()]])
    Runner(gate_config(root)).build()
    rows = {r["id"]: r for r in pq.read_table(Layout(root).shard("verify_instruction", 0)).to_pylist()}
    return root, rows


def test_every_clip_gets_every_score(built):
    root, rows = built
    assert sorted(rows) == ["a", "b"]
    for row in rows.values():
        assert all(1.0 <= row[c] <= 5.0 for c in DNSMOS_COLUMNS), row
        vector = np.array(row["speaker_embedding"], dtype=np.float32)
        assert vector.shape == (256,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
    # one voice: its two clips' embeddings point the same way
    assert np.dot(rows["a"]["speaker_embedding"], rows["b"]["speaker_embedding"]) > 0.7
    metrics = shard_metrics(root)
    assert metrics["scores_computed"] == 6 and metrics["dnsmos_items"] == 2  # 2 clips x (ASR, DNSMOS, voice)
    assert "score_cache_hits" not in metrics


def test_new_bounds_refilter_from_the_cache(built):
    """Only a bound changed: the shard runs again, every score comes from the cache, the ledger is new."""
    root, rows = built
    low, high = sorted(rows, key=lambda i: rows[i]["dnsmos_ovrl"])
    assert rows[high]["dnsmos_ovrl"] - rows[low]["dnsmos_ovrl"] > 0.002
    bound = round((rows[low]["dnsmos_ovrl"] + rows[high]["dnsmos_ovrl"]) / 2, 3)
    [summary] = Runner(gate_config(root, min_dnsmos_ovrl=bound)).build()
    assert summary["shards_run"] == 1
    metrics = shard_metrics(root)
    assert metrics["score_cache_hits"] == 6 and "scores_computed" not in metrics
    [failure] = errors_table(Layout(root), "verify_instruction").to_pylist()
    assert failure["id"] == low and failure["reason"] == "dnsmos_too_low"
    assert f"dnsmos_ovrl={rows[low]['dnsmos_ovrl']:.2f} min={bound}" in failure["detail"]
    kept = pq.read_table(Layout(root).shard("verify_instruction", 0)).to_pylist()
    assert [r["id"] for r in kept] == [high]


def test_a_dnsmos_bound_needs_the_dnsmos_scorer(tmp_path):
    with pytest.raises(ConfigError, match="needs dnsmos in scores"):
        gate_config(tmp_path, scores=["speaker_embedding"], min_dnsmos_p808=3.0)
    with pytest.raises(ConfigError, match="unknown scorers"):
        gate_config(tmp_path, scores=["pesq"])
