import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray instance (2 CPUs) for every Ray test: starting one takes seconds.

    Its workers inherit PYTHONPATH from this process, so they can import the test stages here.
    """
    from pipeline.config import ExecutorSettings
    from pipeline.executors.ray import RayExecutor

    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), before) if p)
    executor = RayExecutor(ExecutorSettings(name="ray", num_cpus=2))
    try:
        executor.connect()
        yield
    finally:
        executor.close()
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
