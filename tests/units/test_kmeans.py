"""k-means helpers and the one-time conversion of fairseq's pickled k-means model."""
import hashlib
import os
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.cluster import MiniBatchKMeans

from stages.kmeans import UnitAssigner, fit_centroids, load_centroids, merge_repeats, save_centroids

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import convert_kmeans  # noqa: E402


def frames(n=600, dim=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_fit_is_deterministic_for_a_seed():
    a, b = fit_centroids(frames(), k=12, seed=5), fit_centroids(frames(), k=12, seed=5)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (12, 16) and a.dtype == np.float32
    with pytest.raises(ValueError, match="at least k=700"):
        fit_centroids(frames(), k=700, seed=5)


def test_assignment_is_the_nearest_centroid():
    centroids = fit_centroids(frames(), k=12, seed=5)
    x = frames(50, seed=1)
    nearest = ((x[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(UnitAssigner(centroids)(torch.from_numpy(x)), nearest)
    assert UnitAssigner(centroids)(torch.from_numpy(x)).dtype == np.int16


def test_merge_repeats():
    np.testing.assert_array_equal(merge_repeats(np.array([3, 3, 1, 1, 1, 3, 7, 7])), [3, 1, 3, 7])
    assert merge_repeats(np.array([], dtype=np.int16)).size == 0


def test_centroid_files_are_plain_arrays_with_a_pin(tmp_path):
    centroids = fit_centroids(frames(), k=12, seed=5)
    sha = save_centroids(tmp_path / "c.npy", centroids)
    assert sha == hashlib.sha256((tmp_path / "c.npy").read_bytes()).hexdigest()
    loaded, got = load_centroids(tmp_path / "c.npy", sha)
    np.testing.assert_array_equal(loaded, centroids)
    with pytest.raises(ValueError, match="pinned"):
        load_centroids(tmp_path / "c.npy", "0" * 64)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        load_centroids(tmp_path / "obj.npy")


def test_convert_kmeans_reads_only_centroids_of_the_pinned_file(tmp_path, capsys):
    model = MiniBatchKMeans(8, random_state=0, n_init=3).fit(frames())
    source = tmp_path / "km8.bin"
    joblib.dump(model, source)  # how fairseq saved its k-means model
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    assert convert_kmeans.main([str(source), str(tmp_path / "km8.npy")]) == 2  # no pin: only the hash is shown
    assert sha in capsys.readouterr().err
    assert convert_kmeans.main([str(source), str(tmp_path / "km8.npy"), "--sha256", "0" * 64]) == 1
    assert not (tmp_path / "km8.npy").exists()
    assert convert_kmeans.main([str(source), str(tmp_path / "km8.npy"), "--sha256", sha]) == 0
    centroids, _ = load_centroids(tmp_path / "km8.npy")
    np.testing.assert_array_equal(centroids, model.cluster_centers_.astype(np.float32))


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch SHOULD_NOT_EXIST",))


def test_convert_kmeans_refuses_other_globals_without_running_them(tmp_path):
    source = tmp_path / "evil.bin"
    joblib.dump({"cluster_centers_": Exploit()}, source)
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    assert convert_kmeans.main([str(source), str(tmp_path / "x.npy"), "--sha256", sha]) == 1
    assert not Path("SHOULD_NOT_EXIST").exists() and not (tmp_path / "x.npy").exists()
