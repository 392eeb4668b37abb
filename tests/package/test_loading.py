"""Loading the published build: `datasets.load_dataset(data_root)` through the card's YAML with
undecoded audio (no torchcodec here), and `stages.loading.load`, which decodes with soundfile."""
import numpy as np
import pytest
from package_upstream import TRAINED, response_text

from stages.loading import load


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("hf-cache"))


def test_load_dataset_reads_the_card_and_keeps_audio_undecoded(package_run, cache):
    from datasets import load_dataset

    root, _ = package_run
    ds = load_dataset(str(root), cache_dir=cache)
    assert sorted(ds) == ["test", "train"]  # validation is empty in this build (see the card)
    assert sum(len(split) for split in ds.values()) == len(TRAINED)
    cell = ds["train"][0]["instruction_audio"]
    assert set(cell) == {"bytes", "path"} and cell["bytes"][:4] == b"fLaC"


def test_load_decodes_audio_with_soundfile(package_run, cache):
    root, _ = package_run
    train = load(root, split="train", cache_dir=cache)
    row = train[0]
    for side in ("instruction", "response"):
        audio = row[f"{side}_audio"]
        assert audio["sampling_rate"] == 16000 and audio["array"].dtype == np.float32 and audio["array"].ndim == 1
        assert len(audio["array"]) / 16000 == pytest.approx(row[f"{side}_duration"], abs=1e-3)
    assert row["response"] == response_text(row["id"])
    assert train["id"] == [r["id"] for r in train]  # a column alone: no audio to decode
    assert sorted(load(root, cache_dir=cache)) == ["test", "train"]
