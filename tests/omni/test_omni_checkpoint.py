"""Durable checkpoints: fsynced, swapped in without a moment with no loadable checkpoint,
leftovers of killed saves ignored and cleaned."""

import os
from pathlib import Path

import pytest
import torch

from omni import checkpoint as ckpt


def _save(run, step, value, **kw):
    return ckpt.save(run, 1, step, {"w": torch.full((3,), float(value))}, {"done": False, "step": step},
                     config_yaml="seed: 1\n", **kw)


def _weight(c):
    return float(ckpt.load_weights(c.path / "model.safetensors")["w"][0])


def _crash(monkeypatch, when):
    """Make os.rename / os.replace raise, like a kill, for the moves `when(src, dst)` selects."""
    for name in ("rename", "replace"):
        real = getattr(os, name)

        def fake(src, dst, *a, _real=real, **kw):
            if when(Path(src), Path(dst)):
                raise OSError("simulated crash")
            return _real(src, dst, *a, **kw)
        monkeypatch.setattr(os, name, fake)


def test_rerun_of_a_step_keeps_the_old_checkpoint_until_the_new_one_is_in(tmp_path, monkeypatch):
    final = _save(tmp_path, 5, 1.0)
    with monkeypatch.context() as m:
        _crash(m, lambda src, dst: dst == final)  # dies just before the new folder takes the name
        with pytest.raises(OSError, match="simulated"):
            _save(tmp_path, 5, 2.0)
        last = ckpt.latest(tmp_path)
        assert (last.stage, last.step, _weight(last)) == (1, 5, 1.0)
    assert _save(tmp_path, 5, 2.0) == final
    assert _weight(ckpt.latest(tmp_path)) == 2.0
    assert os.listdir(final.parent) == [final.name]


def test_leftovers_of_a_killed_save_are_ignored_then_cleaned(tmp_path, monkeypatch):
    _save(tmp_path, 1, 1.0)
    _save(tmp_path, 2, 2.0)
    def killed(*args, **kwargs):
        raise OSError("simulated crash")

    with monkeypatch.context() as m:
        m.setattr(torch, "save", killed)  # dies while writing trainer.pt
        with pytest.raises(OSError, match="simulated"):
            _save(tmp_path, 3, 3.0)
    root = tmp_path / "checkpoints"
    assert len(os.listdir(root)) == 3  # the half-written folder is still there ...
    assert [c.step for c in ckpt.checkpoints(tmp_path)] == [1, 2]  # ... and never listed
    _save(tmp_path, 4, 4.0, keep_last=2)
    assert sorted(os.listdir(root)) == ["stage1-step0000002", "stage1-step0000004"]


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc to name fsynced descriptors")
def test_every_file_and_the_folder_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    synced, real = [], os.fsync

    def spy(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        return real(fd)
    monkeypatch.setattr(os, "fsync", spy)
    final = _save(tmp_path, 7, 1.0)
    in_folder = {p.name for p in synced if p.parent.name.endswith(final.name)}
    assert in_folder == {"model.safetensors", "trainer.pt", "meta.json", "config.yaml"}
    folder = next(i for i, p in enumerate(synced) if p.name.endswith(final.name))
    assert synced.index(final.parent.resolve()) > folder  # the rename is made durable after the contents
