import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from local_build import run_build  # noqa: E402


@pytest.fixture(scope="session")
def local_build(tmp_path_factory):
    """One uninterrupted build of the local profile, shared by the end-to-end tests (it takes minutes)."""
    root = tmp_path_factory.mktemp("local-build")
    result = run_build(root)
    assert result.returncode == 0, result.stderr[-4000:]
    return root, result
