"""profile=full_rehearsal end to end on a CPU: every full-profile engine class on stand-ins in the
real models' formats (Llama through vLLM, CosyVoice SFT speakers in their own environment, the
Piper VITS voice, faster-whisper, fairseq mHuBERT with pinned k-means), a published build with
its export and a card that says it is a rehearsal."""
import json

import pyarrow.parquet as pq
import pytest

from pipeline.ledger import shard_records
from pipeline.shards import Layout

pytestmark = pytest.mark.slow

PINS = {  # conf/profile/full_rehearsal.yaml: the hashes make_standins.py's seed 0 gives on any CPU
    "checkpoint_sha256": "3d3e5edce92d879f79bf6165bc975495e2edc5ee3c04c4efa5820fe66778a239",
    "centroids_sha256": "e575f967a3c3ff3c3938960d2b982a71ad915e9d572322c9a16027239c012a04",
}


def engines(root, stage: str) -> dict[str, str]:
    records = shard_records(Layout(root), stage)
    assert records, f"stage {stage} wrote no shard"
    return {k: v for r in records for k, v in r["engine_versions"].items()}


def test_stand_ins_are_rebuilt_bit_for_bit(standins):
    pins = json.loads((standins / "standins" / "hubert" / "pins.json").read_text())
    assert {k: pins[k] for k in PINS} == PINS


def test_every_stage_ran_the_full_profiles_engine_on_its_stand_in(rehearsal_build, standins):
    root, models = rehearsal_build, standins / "standins"
    rewrite = engines(root, "rewrite")
    assert rewrite["engine"] == "vllm_offline" and rewrite["model"] == str(models / "llama")
    assert engines(root, "respond")["model"] == str(models / "llama")
    speakers = engines(root, "speak_instruction")
    assert set(speakers) <= {"cosyvoice:英文男", "cosyvoice:英文女"} and speakers
    assert all("cosyvoice" in v and str(models / "cosyvoice") in v for v in speakers.values())
    assert "en_US-ljspeech-high.onnx" in engines(root, "speak_response")["piper:ljspeech"]
    for stage in ("verify_instruction", "verify_response"):
        assert engines(root, stage)["asr"].startswith("faster-whisper") and str(models / "whisper") in engines(root, stage)["asr"]
    units = engines(root, "units")
    assert units["hubert"] == f"mhubert_base_vp_en_es_fr_it3.pt sha256:{PINS['checkpoint_sha256']}"
    assert units["hubert_layer"] == "11"
    assert units["kmeans"] == f"k=1000 mhubert_base_vp_en_es_fr_it3_L11_km1000.npy sha256:{PINS['centroids_sha256']}"


def test_the_rehearsal_publishes_like_any_build_and_says_what_it_is(rehearsal_build):
    root = rehearsal_build
    train = sorted((root / "data").glob("train-*.parquet"))
    assert train, "nothing published"
    rows = pq.read_table(train[0], columns=["id", "instruction_speaker", "response_units"]).to_pylist()
    assert rows and all(r["response_units"] and max(r["response_units"]) < 1000 for r in rows)
    assert {r["instruction_speaker"] for r in rows} <= {"cosyvoice:英文男", "cosyvoice:英文女"}
    assert (root / "export" / "llama_omni").is_dir()
    card = (root / "README.md").read_text()
    assert "A rehearsal build (profile=full_rehearsal), not data." in card
    config = json.loads((root / "manifests" / "dataset.json").read_text())["config"]
    assert config["profile"] == "full_rehearsal"
