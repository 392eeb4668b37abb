"""One-time conversion of fairseq's k-means model to a plain array the pipeline can load safely.

    python scripts/convert_kmeans.py mhubert_base_vp_en_es_fr_it3_L11_km1000.bin km1000.npy --sha256 HEX

Why this exists: the recipe's centroids ship as `mhubert_base_vp_en_es_fr_it3_L11_km1000.bin`, a
scikit-learn MiniBatchKMeans saved with joblib, i.e. a pickle. Unpickling runs whatever code
the file names, so a swapped or tampered file could execute anything on this machine. The
pipeline therefore never unpickles at run time; it reads a float32 .npy with
`allow_pickle=False`. This script does the conversion once, and limits the risk three ways:
1. it refuses to read the file unless its sha256 equals the one you pin (`--sha256`: the hash
   you verified against a trusted copy), so only that exact file is ever unpickled;
2. it unpickles with an allow-list: numpy's array rebuilding and joblib's array wrapper are
   real; the k-means estimator becomes an inert record of its attributes (no scikit-learn code
   runs); any other global in the file stops the conversion before it is touched;
3. it keeps only `cluster_centers_` and prints the .npy's sha256, to pin as
   `stages.units.kmeans.centroids_sha256`.
"""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

from pipeline.shards import file_sha256

# numpy globals needed to rebuild arrays, dtypes and scalars (pickled by numpy 1.x or 2.x).
NUMPY_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype")}
# Estimators whose attributes we read; they are rebuilt as `InertRecord`, never as themselves.
ESTIMATORS = {
    ("sklearn.cluster._kmeans", "MiniBatchKMeans"),
    ("sklearn.cluster._kmeans", "KMeans"),
    ("sklearn.cluster.k_means_", "MiniBatchKMeans"),
    ("sklearn.cluster.k_means_", "KMeans"),
}


class InertRecord:
    """Stands in for a pickled estimator: takes its attribute dict, runs none of its code."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {})


class RestrictedUnpickler(NumpyUnpickler):
    dispatch = NumpyUnpickler.dispatch.copy()

    def find_class(self, module, name):
        if (module, name) in NUMPY_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
            return NumpyArrayWrapper
        if (module, name) in ESTIMATORS:
            return InertRecord
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}: not on the allow-list")

    def load_build(self):
        state, target = self.stack[-1], self.stack[-2]
        if isinstance(target, NumpyArrayWrapper) and np.dtype(state.get("dtype", "f4")).hasobject:
            # joblib reads object arrays with plain, unrestricted pickle: never.
            raise pickle.UnpicklingError("refusing an object-dtype array")
        NumpyUnpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = load_build


def read_centroids(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        model = RestrictedUnpickler(str(path), f, ensure_native_byte_order=True).load()
    centers = getattr(model, "cluster_centers_", None)
    if not isinstance(centers, np.ndarray) or centers.ndim != 2:
        raise ValueError(f"{path} holds no [k, dim] cluster_centers_ array")
    return centers.astype(np.float32)


def convert(source: Path, target: Path, sha256: str) -> str:
    """Check the pin, read the centroids, write the .npy; returns the .npy's sha256."""
    actual = file_sha256(source)
    if actual != sha256.lower():
        raise ValueError(f"{source} has sha256 {actual}, not the pinned {sha256}: not converting")
    centroids = read_centroids(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    np.save(target, centroids, allow_pickle=False)
    return file_sha256(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="fairseq k-means .bin (a joblib pickle)")
    parser.add_argument("target", type=Path, help="output .npy of shape [k, dim], float32")
    parser.add_argument("--sha256", help="the source's sha256, verified against a trusted copy")
    args = parser.parse_args(argv)
    print(__doc__.split("\n\n", 2)[2].strip(), file=sys.stderr)
    if not args.sha256:
        print(f"\nno --sha256 given; {args.source} has sha256 {file_sha256(args.source)}. Compare it with a "
              "trusted copy, then rerun with --sha256.", file=sys.stderr)
        return 2
    try:
        npy_sha = convert(args.source, args.target, args.sha256)
    except (ValueError, pickle.UnpicklingError) as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        return 1
    shape = np.load(args.target, allow_pickle=False).shape
    print(f"wrote {args.target}: {shape[0]} centroids of dim {shape[1]}\n"
          f"set stages.units.kmeans.centroids={args.target} kmeans.centroids_sha256={npy_sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
