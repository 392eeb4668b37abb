"""Checkpoints: `${run}/checkpoints/stage{S}-step{N:07d}/`.

  model.safetensors   every weight of the model (tied weights stored once, aliases in metadata)
  trainer.pt          stage, step, done flag, optimizer and scheduler state, RNG states
                      (only tensors and plain Python values: loads with weights_only=True)
  meta.json           stage, step, done (cheap to read without loading the optimizer state)

A checkpoint folder is written under a temporary name, fsynced and renamed when complete. A
folder of the same name (a rerun of that step) is set aside first and deleted only after the new
one is in, so a crash at any point leaves the latest complete checkpoint loadable. Leftovers of a
killed save are ignored and cleaned up by the next save.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.shards import fsync_path

_NAME = re.compile(r"^(\.old-)?stage(\d)-step(\d{7})$")
_FILES = ("trainer.pt", "model.safetensors", "meta.json")
_PARTIAL = ".tmp-"  # being written or being deleted: never loaded, always removable
_ASIDE = ".old-"    # complete, set aside while its replacement is renamed in


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    stage: int
    step: int

    @property
    def state(self) -> dict:
        return torch.load(self.path / "trainer.pt", map_location="cpu", weights_only=True)

    @property
    def meta(self) -> dict:
        return json.loads((self.path / "meta.json").read_text())


def checkpoints(run_dir: Path) -> list[Checkpoint]:
    """Complete checkpoints of a run, oldest first (ordered by stage, then step). One set aside by
    a save that died before renaming its replacement in counts under its own name."""
    root = Path(run_dir) / "checkpoints"
    found = []
    for p in root.iterdir() if root.exists() else []:
        m = _NAME.match(p.name)
        if not m or (m.group(1) and (root / p.name.removeprefix(_ASIDE)).exists()):
            continue
        if all((p / f).exists() for f in _FILES):
            found.append(Checkpoint(p, int(m.group(2)), int(m.group(3))))
    return sorted(found, key=lambda c: (c.stage, c.step))


def latest(run_dir: Path) -> Checkpoint | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def save_weights(state_dict: dict, path: Path) -> None:
    from safetensors.torch import save_file

    tensors, aliases, seen = {}, {}, {}
    for k, v in state_dict.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape), v.dtype)
        if v.numel() and key in seen:
            aliases[k] = seen[key]
            continue
        seen[key] = k
        tensors[k] = v.detach().to("cpu").contiguous()
    save_file(tensors, str(path), metadata={"aliases": json.dumps(aliases)})


def load_weights(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    for k, src in aliases.items():
        tensors[k] = tensors[src]
    return tensors


def load_matching(model, folder: Path) -> None:
    """Load a checkpoint's weights into `model`; a model of another shape is a user error (a run
    trained under other model settings), not a traceback."""
    from .config import UserError

    try:
        model.load_state_dict(load_weights(Path(folder) / "model.safetensors"))
    except RuntimeError as err:
        detail = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err))
        raise UserError(f"{folder} was trained with other model settings than this run's ({detail}); "
                        "start a new run (run_name=...) or give the settings it was trained with") from None


def rng_state() -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(run_dir: Path, stage: int, step: int, model_state: dict, trainer_state: dict,
         keep_last: int = 2, config_yaml: str | None = None) -> Path:
    """Write one checkpoint (with the config that made it) durably; prune older intermediate
    ones of the same stage."""
    root = Path(run_dir) / "checkpoints"
    if not root.exists():
        root.mkdir(parents=True)
        fsync_path(root.parent)
    _clean(root)
    final = root / f"stage{stage}-step{step:07d}"
    tmp, aside = root / f"{_PARTIAL}{final.name}", root / f"{_ASIDE}{final.name}"
    tmp.mkdir()
    save_weights(model_state, tmp / "model.safetensors")
    torch.save(trainer_state, tmp / "trainer.pt")
    meta = {"stage": stage, "step": step, "done": bool(trainer_state.get("done"))}
    (tmp / "meta.json").write_text(json.dumps(meta) + "\n")
    if config_yaml is not None:
        (tmp / "config.yaml").write_text(config_yaml)
    for f in tmp.iterdir():
        fsync_path(f)
    fsync_path(tmp)
    if final.exists():
        final.rename(aside)
    tmp.rename(final)
    fsync_path(root)
    shutil.rmtree(aside, ignore_errors=True)
    _prune(run_dir, stage, keep_last)
    return final


def _clean(root: Path) -> None:
    """Remove what killed saves and prunes left behind; bring back a checkpoint that was set aside
    for a replacement that never arrived."""
    for p in root.iterdir():
        if p.name.startswith(_ASIDE) and not (root / p.name.removeprefix(_ASIDE)).exists():
            p.rename(root / p.name.removeprefix(_ASIDE))
        elif p.name.startswith((_PARTIAL, _ASIDE)):
            shutil.rmtree(p, ignore_errors=True)


def _prune(run_dir: Path, stage: int, keep_last: int) -> None:
    """Keep the newest `keep_last` checkpoints of a stage and every stage's final one."""
    mine = [c for c in checkpoints(run_dir) if c.stage == stage]
    for c in mine[:-max(1, keep_last)]:
        if not c.meta.get("done"):
            # renamed first: a half-deleted folder must not look like a checkpoint
            trash = c.path.with_name(_PARTIAL + c.path.name)
            c.path.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
