"""The wheel carries the configuration and manifests, and its `instructs2s` command builds from any
directory: nothing is looked up next to the source tree."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(REPO)], check=True, capture_output=True, timeout=300)
    return next(out.glob("instructs2s-*.whl"))


def test_the_wheel_holds_conf_manifests_samples_license_and_the_command(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for tracked in subprocess.run(["git", "ls-files", "conf", "manifests", "stages/samples"], cwd=REPO,
                                  capture_output=True, text=True, check=True).stdout.split():
        assert tracked in names, f"{tracked} is not in the wheel"
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert f"{dist_info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "instructs2s = stages.cli:main" in entry_points


def test_the_installed_command_builds_from_another_directory(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed files first on the path: the source tree must not be needed.
    script = ("import sys, pipeline, conf; from stages.cli import main; "
              "print('from', pipeline.__file__, conf.__file__, file=sys.stderr); "
              "sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}

    def instructs2s(*args):
        return subprocess.run([sys.executable, "-c", script, *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=300)

    built = instructs2s("build", "data_root=run", "stages.only=[ingest]", "progress=false", "source.limit=5")
    assert built.returncode == 0, built.stderr[-3000:]
    origin = built.stderr.split("from ", 1)[1].split()
    assert all(path.startswith(str(site)) for path in origin[:2]), origin
    assert (elsewhere / "run" / "stages" / "ingest" / "shard-00000.parquet").is_file()
    shown = instructs2s("build", "--cfg", "job", "data_root=run", "source.limit=5")
    assert shown.returncode == 0 and "limit: 5" in shown.stdout and "hydra:" not in shown.stdout
