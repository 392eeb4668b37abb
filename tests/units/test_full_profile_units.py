"""The full profile's units settings, offline: stand-ins in the recipe's file formats with random
weights (scripts/standins_hubert.py: fairseq checkpoint, joblib k-means .bin converted by
scripts/convert_kmeans.py), run through the real runner on one short clip, on CPU."""
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf
from synthetic_upstream import run_config, speak_row, speech, write_stage

from pipeline.cli import compose_config
from pipeline.errors import ConfigError
from pipeline.runner import Runner
from pipeline.shards import Layout

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from standins_hubert import make_hubert_standins  # noqa: E402

TEXT = "Paris is in France."


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("full_units")
    clip = speech(TEXT)
    write_stage(root, "speak_response", "speak", [[speak_row("a", clip)]])
    write_stage(root, "verify_response", "verify", [[{"id": "a", "transcript": TEXT, "wer": 0.0,
                                                      "duration": len(clip) / 16000, "chars_per_second": 10.0}]])
    return root


@pytest.fixture(scope="module")
def pins(root):
    return make_hubert_standins(root / "models" / "hubert", seed=5)  # where profile=full looks, with run_config's model_cache


def full_units(root, **pinned) -> dict:
    """stages.units of profile=full, with this run's model_cache, on CPU."""
    cfg = compose_config(["profile=full", f"model_cache={root}/models"])
    units = OmegaConf.to_container(cfg.stages.units, resolve=True)
    units["device"] = "cpu"
    if "checkpoint_sha256" in pinned:
        units["checkpoint_sha256"] = pinned["checkpoint_sha256"]
    if "centroids_sha256" in pinned:
        units["kmeans"]["centroids_sha256"] = pinned["centroids_sha256"]
    return units


def test_the_profile_reads_the_standins_where_it_expects_the_recipe_files(root, pins):
    units = full_units(root)
    assert units["checkpoint"].startswith("https://") and units["layer"] == 11
    assert Path(pins["checkpoint"]).name == units["checkpoint"].rsplit("/", 1)[-1]
    assert units["kmeans"]["centroids"] == pins["centroids"] and units["kmeans"]["fit"] is False
    assert np.load(pins["centroids"]).shape == (1000, pins["hidden_size"])


def test_an_unpinned_checkpoint_stops_before_any_work_naming_its_hash(root, pins):
    with pytest.raises(ConfigError, match=f"checkpoint_sha256 is not set; .* has sha256 {pins['checkpoint_sha256']}"):
        Runner(run_config(root, units=full_units(root))).build()
    assert not Layout(root).shard("units", 0).exists()


def test_units_of_one_clip_with_the_pinned_standins(root, pins):
    Runner(run_config(root, units=full_units(root, **pins))).build()  # the URL's file is in the cache: no download
    layout = Layout(root)
    row = pq.read_table(layout.shard("units", 0)).to_pylist()[0]
    units = np.array(row["units"])
    assert row["id"] == "a" and row["unit_frames"] > 40  # 50 frames a second of a ~1.3 s clip
    assert len(units) > 1 and ((units >= 0) & (units < 1000)).all() and (units[1:] != units[:-1]).all()
    versions = json.loads(layout.shard_record("units", 0).read_text())["engine_versions"]
    assert versions["hubert"] == f"mhubert_base_vp_en_es_fr_it3.pt sha256:{pins['checkpoint_sha256']}"
    assert versions["hubert_layer"] == "11"
    assert versions["kmeans"] == f"k=1000 mhubert_base_vp_en_es_fr_it3_L11_km1000.npy sha256:{pins['centroids_sha256']}"
