"""Shared fixtures: tiny synthetic shards and one tiny run trained on them (offline, CPU)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

from omni.config import load_config  # noqa: E402
from omni.synthetic import make_rows, write_shards  # noqa: E402

# small and quick: a thinner encoder than the local profile; global batch 2 built from two
# micro-batches of 1 (exercises gradient accumulation)
FAST = ["train.epochs=3", "train.stage1.epochs=null", "train.stage2.epochs=null", "train.encoder.config.d_model=32", "train.encoder.config.encoder_layers=1",
        "train.encoder.config.encoder_ffn_dim=64", "train.batch_size=2", "train.micro_batch_size=1", "data.eval_fraction=0.0",
        "data.shuffle_buffer=4", "log.tensorboard=false", "checkpoint.every_steps=0"]


def make_cfg(data_root, *overrides):
    return load_config([f"data_root={data_root}", *FAST, *overrides])


@pytest.fixture(scope="session")
def fast_overrides():
    """The fast test settings as Hydra overrides (for runs started as a separate process)."""
    return list(FAST)


@pytest.fixture(scope="session")
def omni_cfg():
    """make_cfg(data_root, *overrides): the config with the fast test settings."""
    return make_cfg


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Two usable items (overfitting and inference)."""
    root = tmp_path_factory.mktemp("omni-tiny")
    write_shards(root, make_rows(2, seed=1), shards=1)
    return root


@pytest.fixture(scope="session")
def mixed_data(tmp_path_factory):
    """Six usable items in two shards, plus one item over 30 s, one empty response, one without units."""
    root = tmp_path_factory.mktemp("omni-mixed")
    write_shards(root, make_rows(6, seed=2, long_audio=1, empty_response=1, no_units=1), shards=2)
    return root


@pytest.fixture(scope="session")
def trained_run(tiny_data):
    """Both stages overfit on the two tiny items; returns the run folder."""
    from omni.train import train

    cfg = make_cfg(tiny_data, "train.epochs=8", "train.stage1.lr=2e-2", "train.stage2.lr=1e-2")
    return train(cfg)


def write_published_layout(root, rows, validation_rows):
    """The package stage's layout: data/train-00000-of-00001.parquet and data/validation-... ."""
    write_shards(root, rows, shards=1)
    write_shards(root / "validation-part", validation_rows, shards=1)
    (root / "validation-part" / "data" / "train-00000-of-00001.parquet").rename(
        root / "data" / "validation-00000-of-00001.parquet")


@pytest.fixture(scope="session")
def published_layout():
    """write_published_layout(root, rows, validation_rows)."""
    return write_published_layout
