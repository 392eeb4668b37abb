"""Leftovers of a killed build: tagged child processes and unheld shared memory are cleaned, by the
reaper when the build dies and by the next build on the same data_root."""
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pipeline import process_hygiene as ph

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


def tagged_sleep(owner: str) -> subprocess.Popen:
    return subprocess.Popen(["sleep", "300"], env={**os.environ, ph.OWNER_VAR: owner})


def wait_gone(proc: subprocess.Popen, timeout: float = 15) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return True
        time.sleep(0.1)
    return False


def test_a_new_build_stops_processes_left_by_a_dead_build_on_its_root(tmp_path, monkeypatch):
    monkeypatch.setattr(ph, "start_reaper", lambda owner: None)
    monkeypatch.delenv(ph.OWNER_VAR, raising=False)
    orphan = tagged_sleep(f"{tmp_path}|{2**22 + 12345}|dead")
    other_root = tagged_sleep(f"{tmp_path}-other|{2**22 + 12345}|dead")
    alive_owner = tagged_sleep(f"{tmp_path}|{os.getpid()}|{ph.start_time(os.getpid())}")
    try:
        time.sleep(0.2)
        cleaned = ph.prepare(tmp_path, offline=True)
        assert wait_gone(orphan) and cleaned["stopped_processes"] == 1
        assert other_root.poll() is None and alive_owner.poll() is None
    finally:
        for p in (orphan, other_root, alive_owner):
            p.kill()
            p.wait()


@pytest.mark.skipif(not ph.SHM_DIR.is_dir(), reason="no /dev/shm")
def test_unheld_shared_memory_is_removed_and_held_is_kept():
    unheld = ph.SHM_DIR / f"psm_test_{uuid.uuid4().hex[:8]}"
    held = ph.SHM_DIR / f"psm_test_{uuid.uuid4().hex[:8]}"
    unheld.write_bytes(b"x")
    held.write_bytes(b"x")
    holder = subprocess.Popen([sys.executable, "-c", f"f = open({str(held)!r}); import time; time.sleep(300)"])
    try:
        time.sleep(1.0)
        ph.remove_unheld_shm()
        assert not unheld.exists() and held.exists()
    finally:
        holder.kill()
        holder.wait()
        held.unlink(missing_ok=True)
        unheld.unlink(missing_ok=True)


def test_the_reaper_stops_a_dead_builds_children(tmp_path):
    # The "build": a shell with an untagged child (as a forked engine is) that outlives it.
    build = subprocess.Popen(["sh", "-c", "sleep 300 & wait"])
    untagged = wait_for_child(build.pid)
    owner = f"{tmp_path}|{build.pid}|{ph.start_time(build.pid)}"
    tagged = tagged_sleep(owner)  # a child started by exec elsewhere, carrying the tag
    ph.start_reaper(owner)
    try:
        time.sleep(1.5)
        assert tagged.poll() is None and ph.alive(untagged), "the reaper waits while the build lives"
        build.kill()
        build.wait()
        assert wait_gone(tagged), "the reaper stops the tagged children of a build that died"
        deadline = time.time() + 15
        while ph.alive(untagged) and time.time() < deadline:
            time.sleep(0.1)
        assert not ph.alive(untagged), "and the processes it started, tagged or not"
    finally:
        tagged.kill()
        build.kill()


def wait_for_child(pid: int) -> int:
    for _ in range(50):
        if children := ph.descendants(pid):
            return min(children)
        time.sleep(0.1)
    raise AssertionError("no child started")


def test_the_local_profile_is_offline_and_every_profile_private(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VLLM_NO_USAGE_STATS"):
        monkeypatch.delenv(name, raising=False)
    ph.apply_environment(offline=False)
    assert os.environ["VLLM_NO_USAGE_STATS"] == "1" and "HF_HUB_OFFLINE" not in os.environ
    ph.apply_environment(offline=True)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_the_full_profile_names_what_it_may_download(tmp_path):
    from pipeline.cli import load_config
    from pipeline.hub_downloads import hub_references

    full = load_config([f"data_root={tmp_path}", "profile=full"])
    assert not full.root.offline
    refs = hub_references(full.resolved)
    assert "meta-llama/Meta-Llama-3-70B-Instruct" in refs and "tatsu-lab/alpaca" in refs
    assert any(r.startswith("https://dl.fbaipublicfiles.com/hubert/") for r in refs)
    local = load_config([f"data_root={tmp_path}"])
    assert local.root.offline and not any(r.startswith("bundled:") for r in hub_references(local.resolved))
