"""The package tests' shared build (see package_upstream.py), made once per session."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from package_upstream import build, write_upstream  # noqa: E402


@pytest.fixture(scope="session")
def package_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("package_run")
    write_upstream(root)
    return root, build(root)
