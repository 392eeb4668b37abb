"""CosyVoice 2's S3 tokenizer from its released file formats, offline: the seeded stand-in
(scripts/standins_s3.py: speech_tokenizer_v2.onnx, real shapes, random weights) read through the
s3tokenizer package's converter, the same weights as a torch.save state dict read weights-only,
and one-line errors for a bad pin, path or format, before any work."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from synthetic_upstream import speak_row, speech, write_stage
from units_nodes import nodes_config, rows

from pipeline.cli import compose_config
from pipeline.errors import ConfigError, MissingModelError
from pipeline.runner import Runner
from pipeline.shards import Layout, file_sha256
from stages.engines.s3_tokenizer import S3Spec, S3Tokenizer, import_s3tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from standins_s3 import make_s3_standin  # noqa: E402

TEXT = "Paris is in France. Boil it for six minutes."


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return make_s3_standin(tmp_path_factory.mktemp("s3") / "s3tokenizer", seed=0)


@pytest.fixture(scope="module")
def tokenizer(standin):
    return S3Tokenizer(S3Spec(checkpoint=standin["checkpoint"], checkpoint_sha256=standin["checkpoint_sha256"]))


def test_the_rehearsal_profile_pins_the_seed_0_standin(standin):
    cfg = compose_config(["profile=full_rehearsal", "model_cache=/m"])
    cv2 = OmegaConf.to_container(cfg.stages.units.cosyvoice2, resolve=True)
    assert cv2 == {"checkpoint": "/m/standins/s3tokenizer/speech_tokenizer_v2.onnx",
                   "checkpoint_sha256": standin["checkpoint_sha256"]}
    full = OmegaConf.to_container(compose_config(["profile=full", "model_cache=/m"]).stages.units, resolve=True)
    assert full["tokenizer"] == "hubert_kmeans"  # the recipe's units are unchanged
    assert full["cosyvoice2"]["checkpoint"] == "/m/s3tokenizer/speech_tokenizer_v2.onnx"


def test_the_onnx_standin_loads_every_weight_at_the_real_shape(standin, tokenizer):
    state = tokenizer.model.state_dict()
    assert sum(v.numel() for v in state.values()) > 120_000_000
    assert state["encoder.blocks.5.attn.query.weight"].shape == (1280, 1280)
    assert state["quantizer._codebook.project_down.weight"].shape == (8, 1280)
    assert tokenizer.identity == f"speech_tokenizer_v2.onnx sha256:{standin['checkpoint_sha256']}"
    clip = speech(TEXT)
    tokens = tokenizer.tokens([clip])[0]
    assert abs(len(tokens) - 25 * len(clip) / 16_000) <= 1
    assert ((tokens >= 0) & (tokens < 6561)).all() and len(set(tokens.tolist())) > 10


def test_the_pytorch_format_gives_the_same_tokens(standin, tokenizer, tmp_path):
    pt = tmp_path / "speech_tokenizer_v2.pt"
    import_s3tokenizer().onnx2torch(standin["checkpoint"], str(pt))  # the package's own conversion
    from_pt = S3Tokenizer(S3Spec(checkpoint=str(pt), checkpoint_sha256=file_sha256(pt)))
    pt.unlink()
    clip = speech(TEXT)
    assert np.array_equal(from_pt.tokens([clip])[0], tokenizer.tokens([clip])[0])


def test_a_pickled_object_is_refused(tmp_path):
    bad = tmp_path / "tokenizer.pt"
    torch.save({"weights": torch.zeros(1), "note": Path("x")}, bad)  # a class the weights-only reader refuses
    with pytest.raises(Exception, match="[Ww]eights.only"):
        S3Tokenizer(S3Spec(checkpoint=str(bad), checkpoint_sha256=file_sha256(bad)))


@pytest.fixture
def upstream(tmp_path):
    clip = speech(TEXT)
    write_stage(tmp_path, "speak_response", "speak", [[speak_row("a", clip)]])
    write_stage(tmp_path, "verify_response", "verify", [[{"id": "a", "transcript": TEXT, "wer": 0.0,
                                                          "duration": len(clip) / 16000, "chars_per_second": 10.0}]])
    return tmp_path


def s3_node(checkpoint, sha256=None) -> dict:
    return {"units_s3": {"tokenizer": "cosyvoice2", "cosyvoice2": {"checkpoint": str(checkpoint),
                                                                  "checkpoint_sha256": sha256}}}


def test_the_pinned_standin_through_the_runner(upstream, standin):
    Runner(nodes_config(upstream, s3_node(standin["checkpoint"], standin["checkpoint_sha256"]))).build()
    row = rows(upstream, "units_s3")["a"]
    assert row["unit_model"] == f"speech_tokenizer_v2.onnx sha256:{standin['checkpoint_sha256']}"
    assert row["unit_vocab_size"] == 6561 and len(row["units"]) > 1


@pytest.mark.parametrize("case, error, message", [
    ("wrong pin", ConfigError, "units_s3.cosyvoice2: .* has sha256 [0-9a-f]{64}, but 0{64} is pinned"),
    ("no pin", MissingModelError, "units_s3.cosyvoice2.checkpoint_sha256 is not set; .* has sha256 [0-9a-f]{64}"),
    ("missing file", MissingModelError, "units_s3.cosyvoice2.checkpoint .*nowhere.onnx not found"),
    ("other format", ConfigError, "read from .onnx or .pt files"),
])
def test_a_bad_pin_path_or_format_is_one_line_before_any_work(upstream, standin, case, error, message):
    checkpoint, sha = {"wrong pin": (standin["checkpoint"], "0" * 64), "no pin": (standin["checkpoint"], None),
                       "missing file": (upstream / "nowhere.onnx", "0" * 64),
                       "other format": (Path(standin["checkpoint"]).parent / "pins.bin", "0" * 64)}[case]
    if case == "other format":
        checkpoint.write_bytes(b"x")
    with pytest.raises(error, match=message) as raised:
        Runner(nodes_config(upstream, s3_node(checkpoint, sha))).build()
    assert "\n" not in str(raised.value)
    assert not Layout(upstream).shard("units_s3", 0).exists()
