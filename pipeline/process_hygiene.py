"""What a build's processes leave behind, and the environment they start with.

Engines start child processes (vLLM's EngineCore, joblib/loky workers) and shared memory
(`/dev/shm/psm_*`, loky and multiprocessing semaphores). A SIGKILL of the build leaves them
behind: the children keep running and the segments stay mapped in nobody. So:
- every child started by exec inherits `INSTRUCTS2S_OWNER=<data_root>|<pid>|<start>`, naming the
  build process (a forked child, such as vLLM's EngineCore, shows its parent's exec-time
  environment in /proc, so the reaper also follows the process tree);
- a reaper process (its own session, so a kill of the build's process group spares it) watches
  the build's descendants and which shared-memory files they map, waits for the build to end,
  then stops those processes and removes those files (only those: other programs' files are not
  its business);
- a new build on the same data_root first stops tagged processes whose build is gone (the
  reaper may have been killed too) and removes shared memory of those patterns that no process
  has held for SHM_GRACE_S (loky's semaphores only once the process named in them is gone).
"""
from __future__ import annotations

import fnmatch
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)
OWNER_VAR = "INSTRUCTS2S_OWNER"
SHM_DIR = Path("/dev/shm")
# Names Python's multiprocessing.shared_memory, its semaphores and loky give their files.
SHM_PATTERNS = ("psm_*", "sem.mp-*", "sem.loky-*", "loky-*")
SHM_GRACE_S = 30  # younger files may belong to a process that is about to open them


def apply_environment(offline: bool) -> None:
    """Private always; offline when the profile needs no hub (the local one)."""
    os.environ["VLLM_NO_USAGE_STATS"] = "1"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if offline:
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ.setdefault(name, "1")


def prepare(data_root: Path, offline: bool) -> dict[str, int]:
    """Before a build: environment, leftovers of earlier builds on this root, the reaper."""
    apply_environment(offline)
    stopped = stop_processes(lambda owner: owner_root(owner) == str(data_root) and not owner_alive(owner))
    removed = remove_unheld_shm(min_age_s=SHM_GRACE_S)
    os.environ[OWNER_VAR] = f"{data_root}|{os.getpid()}|{start_time(os.getpid())}"
    start_reaper(os.environ[OWNER_VAR])
    return {"stopped_processes": stopped, "removed_shm": removed}


# -- processes -------------------------------------------------------------------------------
def start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_root(owner: str) -> str:
    return owner.rsplit("|", 2)[0]


def owner_alive(owner: str) -> bool:
    _, pid, started = owner.rsplit("|", 2)
    return start_time(int(pid)) == started and alive(int(pid))  # a zombie is dead: not yet reaped


def tagged_processes() -> dict[int, str]:
    """pid -> owner tag, for the processes this user may read that carry one."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(OWNER_VAR.encode() + b"="):
                found[int(entry.name)] = item.split(b"=", 1)[1].decode(errors="replace")
    return found


def stop_processes(select, grace_s: float = 3.0) -> int:
    return stop_pids([pid for pid, owner in tagged_processes().items() if select(owner)], grace_s)


def descendants(root_pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def stop_pids(victims: list[int], grace_s: float = 3.0) -> int:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in victims:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace_s
        while sig == signal.SIGTERM and time.time() < deadline and any(alive(p) for p in victims):
            time.sleep(0.1)
    return len(victims)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# -- shared memory ---------------------------------------------------------------------------
def held_shm(pids: list[int] | None = None) -> set[str]:
    """Names under /dev/shm that the given processes (default: every readable one) map or hold open."""
    held = set()
    entries = [Path(f"/proc/{p}") for p in pids] if pids is not None else Path("/proc").iterdir()
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            for line in (entry / "maps").read_text().splitlines():
                if "/dev/shm/" in line:
                    held.add(line.split("/dev/shm/", 1)[1].split()[0])
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("/dev/shm/"):
                    held.add(target[len("/dev/shm/"):].split()[0])
        except OSError:
            continue
    return held


_LOKY_NAME = re.compile(r"^(?:sem\.)?loky-(\d+)-")


def named_by(pids) -> set[str]:
    """loky's semaphores carry their creator's pid in their name, and are not mapped while idle."""
    if not SHM_DIR.is_dir():
        return set()
    return {p.name for p in SHM_DIR.iterdir() if (m := _LOKY_NAME.match(p.name)) and int(m.group(1)) in pids}


def ours(name: str) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in SHM_PATTERNS)


def remove_unheld_shm(min_age_s: float = 0.0, only: set[str] | None = None) -> int:
    if not SHM_DIR.is_dir():
        return 0
    held = held_shm()
    removed = 0
    now = time.time()
    for path in SHM_DIR.iterdir():
        if not ours(path.name) or path.name in held or (only is not None and path.name not in only):
            continue
        if (m := _LOKY_NAME.match(path.name)) and alive(int(m.group(1))):
            continue  # idle loky semaphores are unmapped; their creator still uses them
        try:
            stat = path.stat()
            if stat.st_uid != os.getuid() or now - stat.st_mtime < min_age_s:
                continue
            path.unlink()
            removed += 1
        except OSError:
            continue
    return removed


# -- the reaper ------------------------------------------------------------------------------
def start_reaper(owner: str) -> None:
    subprocess.Popen(
        [sys.executable, "-m", "pipeline.process_hygiene", owner],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, env={**os.environ, OWNER_VAR: ""},
    )


def reap(owner: str, poll_s: float = 0.5, max_poll_s: float = 4.0) -> None:
    """Wait for the build process to end, then clean up after it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the build; the reaper then cleans
    build_pid = int(owner.rsplit("|", 2)[1])
    seen: set[str] = set()
    family: dict[int, str] = {}  # pid -> start time, of every process the build started
    wait = poll_s
    while owner_alive(owner):
        before = (len(family), len(seen))
        pids = descendants(build_pid) | {pid for pid, tag in tagged_processes().items() if tag == owner}
        pids.discard(os.getpid())  # the reaper is the build's child too
        family.update({pid: start_time(pid) for pid in pids if pid not in family})
        seen |= {name for name in held_shm([build_pid, *pids]) if ours(name)}
        seen |= named_by(family.keys() | {build_pid})
        # Scanning /proc costs CPU: back off while nothing changes (a long stage, or a test process
        # that ran a build in-process and goes on for minutes), look closely again when it does.
        wait = poll_s if (len(family), len(seen)) != before else min(wait * 2, max_poll_s)
        time.sleep(wait)
    victims = {pid for pid, started in family.items() if started and start_time(pid) == started}
    victims |= {pid for pid, tag in tagged_processes().items() if tag == owner}
    stopped = stop_pids(sorted(victims))
    removed, deadline = 0, time.time() + 15
    while True:  # a process that was just stopped may still be releasing its mappings
        removed += remove_unheld_shm(only=seen)
        if not any((SHM_DIR / name).exists() for name in seen) or time.time() > deadline:
            break
        time.sleep(0.5)
    log.info("build %s ended: stopped %d of the %d processes it started, removed %d of %d shared-memory files",
             build_pid, stopped, len(family), removed, len(seen))


if __name__ == "__main__":
    logs = Path(owner_root(sys.argv[1])) / "logs"
    if logs.is_dir():
        logging.basicConfig(filename=logs / "reaper.log", level=logging.INFO,
                            format="%(asctime)s %(levelname)s reaper: %(message)s")
    try:
        reap(sys.argv[1])
    except Exception:
        log.exception("reaper failed")
        raise
