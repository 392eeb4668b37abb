"""A build killed with SIGKILL part way and rerun in a new process ends byte for byte like one
that ran straight through; so does a fresh process that reruns only units and package.

Every stage runs in one process, so a stage must not inherit numerics from what ran before it
there. It did: loading CTranslate2's Whisper (the verify stages) sets OpenMP's thread count, which
lands in torch's pool when torch was loaded first (by vLLM's stages). A straight build computed
HuBERT features with 1 thread, a resumed one (LLM stages skipped) with torch's default, and the
k-means centroids, units and training shards differed.
"""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_build import LOCAL_BUILD as OVERRIDES  # the shared straight build's settings

REPO = Path(__file__).resolve().parents[1]
# Logged by faster-whisper for the first clip verify_instruction checks: a model stage is underway.
KILL_AT = "faster_whisper: Processing audio"
TIMEOUT_S = 1200


def command(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "build", f"data_root={root}", *OVERRIDES, *extra]


def environment() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def build(root: Path, *extra: str) -> None:
    result = subprocess.run(command(root, *extra), cwd=REPO, env=environment(), capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-4000:]


def logged(root: Path, marker: str) -> bool:
    return any(marker in p.read_text(errors="replace") for p in (root / "logs").glob("*.log"))


def build_killed_at(root: Path, marker: str, stage: str, delay_s: float = 0.0) -> None:
    """Start a build in its own process group and SIGKILL the whole group `delay_s` after
    `marker` is logged, while `stage` has not finished."""
    proc = subprocess.Popen(command(root), cwd=REPO, env=environment(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + TIMEOUT_S
    try:
        while not logged(root, marker):
            assert proc.poll() is None, f"the build ended (rc={proc.returncode}) before logging {marker!r}"
            assert time.time() < deadline, f"no {marker!r} in the log after {TIMEOUT_S}s"
            time.sleep(0.2)
        time.sleep(delay_s)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (root / "manifests" / stage / "stage.json").exists(), f"killed too late: {stage} had finished"


def shard_hashes(root: Path) -> dict[str, str]:
    """Shards, splits and exports; an export's absolute paths name its own root, so that is masked."""
    files = [*root.glob("stages/*/*.parquet"), *root.glob("data/*.parquet"),
             *(p for p in root.glob("export/**/*") if p.is_file() and p.name != ".export-stamp.json")]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes().replace(str(root).encode(), b"ROOT")).hexdigest()
            for p in sorted(files)}


def differences(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(name for name in a.keys() | b.keys() if a.get(name) != b.get(name))


@pytest.fixture(scope="module")
def straight(local_build) -> tuple[Path, dict[str, str]]:
    root, _ = local_build
    expected = shard_hashes(root)
    assert any(name.startswith("stages/units/") for name in expected)
    assert any(name.startswith("data/") for name in expected)
    return root, expected


def test_killed_and_rerun_builds_match_an_uninterrupted_one(tmp_path, straight):
    root, expected = straight
    killed, partial = tmp_path / "killed", tmp_path / "partial"
    build_killed_at(killed, KILL_AT, "verify_instruction")
    build(killed)
    assert differences(expected, shard_hashes(killed)) == []

    # A fresh process that runs only units (k-means fitted again) and package, on a copy.
    shutil.copytree(root, partial)
    for path in ["stages/units", "stages/package", "manifests/units", "manifests/package", "data", "export",
                 "cache/kmeans"]:
        shutil.rmtree(partial / path)
    build(partial, "stages.only=[units,package]")
    assert differences(expected, shard_hashes(partial)) == []


# The other model stages, killed a few seconds into their work: `make test-nightly`.
@pytest.mark.nightly
@pytest.mark.parametrize("stage", ["rewrite", "respond", "speak_instruction", "speak_response",
                                   "verify_response", "units", "package"])
def test_a_kill_in_any_stage_reruns_to_the_same_bytes(tmp_path, straight, stage):
    _, expected = straight
    build_killed_at(tmp_path, f"stage {stage}: started", stage, delay_s=3.0)
    build(tmp_path)
    assert differences(expected, shard_hashes(tmp_path)) == []
