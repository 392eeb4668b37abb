"""A model setting written as a path (/..., ~/..., ./..., ../...) must exist before a build starts.

Without this check such a path reaches the engine as if it were a hub name, and the build fails
only when the stage loads its model (after the earlier stages ran) with the hub client's error
about repo ids. Hub names (org/name) and package names are left alone.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.errors import MissingModelError

PATH_PREFIXES = ("/", "~", "./", "../")


def looks_like_path(model: str) -> bool:
    return str(model).startswith(PATH_PREFIXES)


def require_local(model: str, key: str, hint: str = "") -> None:
    """MissingModelError (one line) when `model`, the value of setting `key`, is a path that does not exist."""
    if not looks_like_path(model) or Path(model).expanduser().exists():
        return
    if "/standins/" in str(model):
        model_cache = str(model).split("/standins/")[0]
        hint = f"a stand-in: make them with `python scripts/make_standins.py --model-cache {model_cache}`"
    raise MissingModelError(f"{key}: {model} does not exist" + (f" ({hint})" if hint else ""))


def piper_download_hint(model: str) -> str:
    """How to fetch a Piper voice given by its .onnx path (voices are named lang_REGION-name-quality)."""
    path = Path(model)
    return (f"download it with `python -m piper.download_voices {path.stem} --data-dir {path.parent}` "
            "(rhasspy/piper-voices on the Hugging Face hub)")
