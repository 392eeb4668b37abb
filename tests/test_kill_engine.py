"""Kills during a real vLLM stage: the build process killed leaves no process and no shared memory
behind; the engine process killed alone is a clear infrastructure error that leaves no process."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import process_hygiene as ph

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def start(root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "build", f"data_root={root}", "progress=false", "source.limit=8",
         "stages.only=[ingest,rewrite]", "stages.rewrite.engine.cpu_kvcache_gib=1",
         # the meaning check is not under test: load less
         "stages.rewrite.fidelity.embedding_model=null", "stages.rewrite.fidelity.min_similarity=null",
         "stages.respond.fidelity.min_similarity=null"],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def build_processes(root: Path) -> list[int]:
    return [pid for pid, owner in ph.tagged_processes().items() if ph.owner_root(owner) == str(root)]


def reapers() -> list[int]:
    return [pid for pid, owner in ph.tagged_processes().items() if owner == ""]


def engine_process(build: subprocess.Popen) -> int | None:
    """vLLM's EngineCore: a child of the build (forked, so it may not carry the owner tag)."""
    for pid in ph.descendants(build.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "EngineCore" in cmdline:
            return pid
    return None


def wait_for(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def first_generation_cached(root: Path) -> bool:
    cache = root / "cache" / "llm"
    return cache.is_dir() and any(p.is_file() for p in cache.rglob("*"))


def our_shm() -> set[str]:
    return {p.name for p in ph.SHM_DIR.iterdir()} if ph.SHM_DIR.is_dir() else set()


def leaked_shm(before: set[str]) -> set[str]:
    new = {n for n in our_shm() - before if any(n.startswith(p.rstrip("*")) for p in ph.SHM_PATTERNS)}
    return new - ph.held_shm()


def test_kills_during_the_llm_stage(tmp_path):
    root = tmp_path / "run"
    shm_before = our_shm()

    # 1. SIGKILL of the build process alone while the engine generates: its children are orphaned.
    build = start(root)
    wait_for(lambda: first_generation_cached(root) or build.poll() is not None, 600, "a first generation")
    assert build.poll() is None, build.communicate()[1][-3000:]
    children = ph.descendants(build.pid) - set(reapers())
    assert engine_process(build) in children
    build.kill()
    build.communicate()
    wait_for(lambda: not any(ph.alive(p) for p in children) and not build_processes(root), 30,
             "the reaper to stop the engine")
    wait_for(lambda: not leaked_shm(shm_before), 30, "the reaper to remove the shared memory")

    # 2. The engine process alone killed mid-shard: one clear error, exit code 2, no traceback.
    for item in (root / "cache" / "llm").rglob("*"):  # generate again rather than read the cache
        if item.is_file():
            item.unlink()
    build = start(root)
    engine = wait_for(lambda: (first_generation_cached(root) and engine_process(build)) or build.poll() is not None,
                      600, "the engine")
    assert build.poll() is None, build.communicate()[1][-3000:]
    os.kill(engine, signal.SIGKILL)
    _, err = build.communicate(timeout=300)
    assert build.returncode == 2, err[-3000:]
    assert "ERROR:" in err and "Traceback" not in err.split("ERROR:")[-1]
    assert not (root / "manifests" / "rewrite" / "shard-00000.json").exists()
    wait_for(lambda: not build_processes(root), 30, "every process of the failed build to stop")
    # That a rerun then resumes and finishes is what tests/test_resume_across_processes.py shows for
    # every stage; a third engine start here would cost another minute of the suite.
