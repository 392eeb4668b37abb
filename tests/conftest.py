import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from local_build import run_build  # noqa: E402
from rehearsal_build import COSYVOICE_PYTHON, make_standins, run_rehearsal  # noqa: E402


@pytest.fixture(scope="session")
def local_build(tmp_path_factory):
    """One uninterrupted build of the local profile, shared by the end-to-end tests (it takes minutes)."""
    root = tmp_path_factory.mktemp("local-build")
    result = run_build(root)
    assert result.returncode == 0, result.stderr[-4000:]
    return root, result


@pytest.fixture(scope="session")
def standins(tmp_path_factory):
    """A model_cache holding every stand-in of scripts/make_standins.py (the rehearsal profiles' models)."""
    if not COSYVOICE_PYTHON.exists():
        pytest.skip("CosyVoice environment absent: run `make setup-cosyvoice` (CI does)")
    model_cache = tmp_path_factory.mktemp("model-cache")
    result = make_standins(model_cache)
    assert result.returncode == 0, result.stderr[-4000:]
    return model_cache


@pytest.fixture(scope="session")
def rehearsal_build(tmp_path_factory, standins):
    """One build of profile=full_rehearsal on the stand-ins (every full-profile engine class, on a CPU)."""
    root = tmp_path_factory.mktemp("rehearsal-build")
    result = run_rehearsal(root, standins)
    assert result.returncode == 0, result.stderr[-4000:]
    return root
