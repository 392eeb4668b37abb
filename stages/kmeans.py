"""k-means over HuBERT features: fitting centroids, storing them as a plain .npy, assigning units.

Centroids are only ever stored as a float32 array in a .npy file and read with
`allow_pickle=False`; fairseq's pickled scikit-learn model is converted once, explicitly, by
scripts/convert_kmeans.py.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from pipeline.shards import atomic_write_bytes

MAX_UNITS = np.iinfo(np.int16).max  # units are stored as int16


def fit_centroids(features: np.ndarray, k: int, seed: int, batch_size: int = 4096,
                  max_iter: int = 100, n_init: int = 3) -> np.ndarray:
    """MiniBatchKMeans on [frames, dim] features; deterministic for a given seed and input."""
    from sklearn.cluster import MiniBatchKMeans

    if not 1 < k <= MAX_UNITS:
        raise ValueError(f"k must be in 2..{MAX_UNITS}, got {k}")
    if len(features) < k:
        raise ValueError(f"k-means needs at least k={k} frames to fit, got {len(features)}")
    model = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=batch_size, max_iter=max_iter,
                            n_init=n_init, compute_labels=False)
    model.fit(np.asarray(features, dtype=np.float32))
    return model.cluster_centers_.astype(np.float32)


def save_centroids(path: Path, centroids: np.ndarray) -> str:
    """Write atomically; returns the file's sha256."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(centroids, dtype=np.float32), allow_pickle=False)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_centroids(path: Path, sha256: str | None = None) -> tuple[np.ndarray, str]:
    """(centroids [k, dim] float32, file sha256); a pinned sha256 must match."""
    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise ValueError(f"centroids {path} have sha256 {actual}, but {sha256} is pinned")
    centroids = np.load(io.BytesIO(data), allow_pickle=False)
    if centroids.ndim != 2 or not 1 < len(centroids) <= MAX_UNITS:
        raise ValueError(f"centroids {path} must be a [k, dim] array with 2 <= k <= {MAX_UNITS}, got {centroids.shape}")
    return centroids.astype(np.float32), actual


class UnitAssigner:
    """Nearest centroid per frame (squared Euclidean distance), on the features' device."""

    def __init__(self, centroids: np.ndarray, device="cpu"):
        import torch

        self.centroids = torch.from_numpy(np.asarray(centroids, dtype=np.float32)).to(device)
        self.sq_norms = self.centroids.square().sum(1)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def __call__(self, features) -> np.ndarray:
        import torch

        x = features.to(self.centroids.device, torch.float32)
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every centroid.
        scores = self.sq_norms[None, :] - 2 * x @ self.centroids.T
        return scores.argmin(1).cpu().numpy().astype(np.int16)


def merge_repeats(units: np.ndarray) -> np.ndarray:
    """Collapse runs of the same unit (the recipe trains on de-duplicated units)."""
    units = np.asarray(units)
    if units.size == 0:
        return units
    keep = np.ones(len(units), dtype=bool)
    keep[1:] = units[1:] != units[:-1]
    return units[keep]
