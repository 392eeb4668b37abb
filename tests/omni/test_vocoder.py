"""The unit vocoder: the released layout round-trips bit for bit with fairseq's parameter names,
the speech is sum(durations) x 320 samples, bad folders end in one line, and each profile's
`vocoder` block loads (the rehearsal's stand-in with its pin)."""

from __future__ import annotations

import copy
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from omni.config import UserError, load_config
from omni.vocoder import CHECKPOINT_FILE, CONFIG_FILE, UnitVocoder, load_vocoder, save_released_format

HOP = 320  # samples per unit frame of the released vocoder (16 kHz, 50 frames/s)


def settings(profile: str = "local", *overrides: str) -> dict:
    cfg = load_config(["data_root=/data", f"train={profile}", *overrides])
    return OmegaConf.to_container(cfg.train.vocoder, resolve=True)


def some_units(count: int, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(0, 1000, count).tolist()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a small shared CPU, two threads of the generator's convolutions wait
    on each other (several times slower than one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def vocoder() -> UnitVocoder:
    """The local profile's vocoder: the released shape with seeded random weights."""
    return load_vocoder(settings("local"))


@pytest.fixture(scope="module")
def released(vocoder, tmp_path_factory) -> Path:
    return save_released_format(vocoder, tmp_path_factory.mktemp("vocoder"))


def test_released_format_round_trips_bit_for_bit(vocoder, released):
    assert vocoder.random_weights and vocoder.sample_rate == 16000
    loaded = load_vocoder({**settings("local"), "path": str(released)})
    assert not loaded.random_weights
    units = some_units(50)
    first = vocoder.synthesize(units)
    assert first.dtype == np.float32 and np.isfinite(first).all() and np.abs(first).max() > 0
    assert np.array_equal(loaded.synthesize(units), first)


def test_checkpoint_has_fairseqs_names_and_the_released_shapes(released):
    state = torch.load(released / CHECKPOINT_FILE, map_location="cpu", weights_only=True)["generator"]
    names = set(state)
    assert {"dict.weight", "dur_predictor.conv1.0.weight", "dur_predictor.ln1.weight", "dur_predictor.conv2.0.bias",
            "dur_predictor.ln2.bias", "dur_predictor.proj.weight", "conv_pre.weight_g", "conv_pre.weight_v",
            "ups.0.weight_g", "ups.0.weight_v", "ups.4.bias", "resblocks.0.convs1.0.weight_g",
            "resblocks.0.convs1.2.weight_v", "resblocks.14.convs2.2.weight_v", "conv_post.weight_g",
            "conv_post.bias"} <= names
    assert not [n for n in names if "parametrizations" in n]
    assert sum(n.startswith("resblocks.") and n.endswith(".convs1.0.weight_g") for n in names) == 5 * 3
    assert state["dict.weight"].shape == (1000, 128)
    assert state["conv_pre.weight_v"].shape == (512, 128, 7)
    assert state["ups.0.weight_v"].shape == (512, 256, 11) and state["ups.0.weight_g"].shape == (512, 1, 1)
    assert state["conv_post.weight_v"].shape == (1, 16, 7)
    assert sum(t.numel() for t in state.values()) > 13_000_000  # the released file is ~55 MB of float32


def test_weight_g_and_weight_v_mean_what_torchs_legacy_weight_norm_means(vocoder, released):
    """fairseq stored its weights with torch.nn.utils.weight_norm: the same numbers in a layer
    normed that way compute what this module's layer computes."""
    state = torch.load(released / CHECKPOINT_FILE, map_location="cpu", weights_only=True)["generator"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the legacy function is deprecated
        legacy = torch.nn.utils.weight_norm(torch.nn.ConvTranspose1d(512, 256, 11, 5, padding=3))
    legacy.load_state_dict({k.removeprefix("ups.0."): v for k, v in state.items() if k.startswith("ups.0.")})
    x = torch.randn(1, 512, 9)
    with torch.no_grad():
        assert torch.allclose(legacy(x), vocoder.ups[0](x), atol=1e-6)


def test_speech_is_the_predicted_durations_times_the_hop(vocoder):
    units = some_units(40, seed=1)
    frames = vocoder.durations(units)
    assert len(frames) == len(units) and bool((frames >= 1).all())
    assert len(vocoder.synthesize(units)) == int(frames.sum()) * HOP
    forced = copy.deepcopy(vocoder)
    with torch.no_grad():
        forced.dur_predictor.proj.weight.zero_()
        forced.dur_predictor.proj.bias.fill_(math.log(1 + 3))  # exp(x) - 1 = 3 frames per unit
        assert forced.durations(units).tolist() == [3] * len(units)
        assert len(forced.synthesize(units)) == 3 * len(units) * HOP
        forced.dur_predictor.proj.bias.fill_(-5.0)  # under one frame: clamped to one
        assert len(forced.synthesize(units)) == len(units) * HOP


def test_no_units_no_speech(vocoder):
    speech = vocoder.synthesize([])
    assert speech.shape == (0,) and speech.dtype == np.float32


def test_units_out_of_range_are_refused(vocoder):
    with pytest.raises(ValueError, match=r"\[0, 1000\)"):
        vocoder.synthesize([3, 1000])


def one_line_error(vocoder_settings: dict, match: str) -> str:
    with pytest.raises(UserError, match=match) as err:
        load_vocoder(vocoder_settings)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_bad_vocoder_folders_are_one_line_user_errors(released, tmp_path):
    base = settings("local")
    no_config = tmp_path / "no-config"
    no_config.mkdir()
    (no_config / CHECKPOINT_FILE).write_bytes((released / CHECKPOINT_FILE).read_bytes())
    one_line_error({**base, "path": str(no_config)}, r"has no config\.json")

    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / CONFIG_FILE).write_bytes((released / CONFIG_FILE).read_bytes())
    (truncated / CHECKPOINT_FILE).write_bytes((released / CHECKPOINT_FILE).read_bytes()[:100_000])
    one_line_error({**base, "path": str(truncated)}, r"cannot read .*g_00500000")
    one_line_error({**base, "path": str(released), "sha256": "0" * 64}, r"but 0{64} is pinned")

    narrower = tmp_path / "narrower"  # a config.json that is not the checkpoint's
    narrower.mkdir()
    (narrower / CHECKPOINT_FILE).write_bytes((released / CHECKPOINT_FILE).read_bytes())
    config = (released / CONFIG_FILE).read_text()
    (narrower / CONFIG_FILE).write_text(config.replace('"upsample_initial_channel": 512', '"upsample_initial_channel": 256'))
    one_line_error({**base, "path": str(narrower)}, r"g_00500000 does not fit .*config\.json: .*size mismatch")
    (narrower / CONFIG_FILE).write_text(config.replace('"embedding_dim": 128', '"embedding_dim": 64'))
    one_line_error({**base, "path": str(narrower)}, r"model_in_dim, embedding_dim .* must be equal")

    missing = one_line_error({**base, "path": str(tmp_path / "standins" / "vocoder")}, r"has no config\.json and g_00500000")
    assert "make_standins.py --only vocoder" in missing


def test_the_published_vocoder_is_fetched_only_online_and_only_pinned(released, tmp_path, monkeypatch):
    full = settings("full", f"model_cache={tmp_path}")
    assert full["path"] == str(tmp_path / "vocoder" / "mhubert_vp_en_es_fr_it3_400k_layer11_km1000_lj")
    assert full["url"].startswith("https://dl.fbaipublicfiles.com/") and full["checkpoint_file"] == CHECKPOINT_FILE
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    one_line_error(full, r"downloading is off")
    # the files in place but no pin: stop and print the hash to check
    from pipeline.shards import file_sha256

    one_line_error({**full, "path": str(released)}, rf"sha256 is not set; .* has sha256 {file_sha256(released / CHECKPOINT_FILE)}")
    pinned = load_vocoder({**full, "path": str(released), "sha256": file_sha256(released / CHECKPOINT_FILE)})
    assert not pinned.random_weights


def test_profiles_random_vocoders_have_the_released_shape(vocoder):
    assert settings("real_size")["path"] is None
    assert settings("real_size")["config"] == settings("full")["config"] == settings("local")["config"]
    other_seed = load_vocoder({**settings("local"), "seed": 1})
    assert not torch.equal(other_seed.ups[0].parametrizations.weight.original1, vocoder.ups[0].parametrizations.weight.original1)


def test_the_rehearsal_loads_its_standin_with_its_pin(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import make_standins

    builder = next(b for b in make_standins.BUILDERS if b.name == "vocoder")
    make_standins.ensure(builder, tmp_path / "standins", seed=0)
    rehearsal = settings("full_rehearsal", f"model_cache={tmp_path}")
    standin = load_vocoder(rehearsal)  # checks the pinned sha256: the bytes are the same on any CPU
    units = some_units(30)
    assert len(standin.synthesize(units)) == int(standin.durations(units).sum()) * HOP
