"""Batched HuBERT extraction gives the same features and units as one clip at a time."""
import numpy as np
import pytest
import torch

from stages.kmeans import UnitAssigner, fit_centroids, merge_repeats
from stages.units import extract


def test_batched_units_equal_per_utterance_units(hubert, clips, batched, alone):
    assert len({len(c) for c in clips}) == len(clips)  # padding really happens
    centroids = fit_centroids(torch.cat(alone).numpy(), k=50, seed=0)
    assign = UnitAssigner(centroids)
    for clip, b, a in zip(clips, batched, alone):
        assert b.shape == a.shape == (hubert.num_frames(len(clip)), 768)
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
        assert_units_equal_but_for_ties(assign, b, a)


def assert_units_equal_but_for_ties(assign, b, a):
    """Units agree frame by frame, except where a frame sits on a tie between two centroids.

    Features that agree to 1e-4 can still fall on either side of the boundary between two nearly
    equidistant centroids (how often depends on the CPU's float kernels). A flip is only allowed where
    the triangle inequality says the feature difference explains it: |a-c_b| - |a-c_a| <= 2 |a-b|.
    """
    ub, ua = assign(b), assign(a)
    flipped = np.flatnonzero(ub != ua)
    assert len(flipped) <= max(1, len(ua) // 20), f"{len(flipped)} of {len(ua)} frames changed unit"
    centroids = assign.centroids
    for i in flipped:
        gap = (a[i] - centroids[int(ub[i])]).norm() - (a[i] - centroids[int(ua[i])]).norm()
        assert gap <= 2 * (a[i] - b[i]).norm() + 1e-6, f"frame {i}: unit {ub[i]} vs {ua[i]} is not a tie"
    if not len(flipped):
        np.testing.assert_array_equal(merge_repeats(ub), merge_repeats(ua))


def test_length_batching_keeps_input_order(hubert, clips, batched):
    small_batches = extract(hubert, clips, batch_seconds=3.0)  # several length-sorted batches
    for a, b in zip(batched, small_batches):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_features_are_the_output_of_the_requested_layer(clips, alone):
    """The library's own forward pass on an untruncated model, hidden_states[11]: layer 11."""
    from transformers import HubertConfig, HubertModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        full = HubertModel(HubertConfig(apply_spec_augment=False)).eval()
    with torch.inference_mode():
        reference = full(torch.from_numpy(clips[0])[None], output_hidden_states=True).hidden_states[11][0]
        last = full(torch.from_numpy(clips[0])[None]).last_hidden_state[0]
    ours = alone[0]
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    assert (ours - last).abs().max() > 1e-2  # and not the last layer (a known pitfall)


def test_plain_padded_batch_would_change_the_short_clip(hubert, clips, alone):
    """Why the masked GroupNorm exists: the library's padded forward alters the shorter clip."""
    short, long = clips[1], clips[3]
    batch = torch.zeros(2, len(long))
    batch[0, : len(short)] = torch.from_numpy(short)
    batch[1] = torch.from_numpy(long)
    mask = torch.zeros(2, len(long), dtype=torch.long)
    mask[0, : len(short)] = 1
    mask[1] = 1
    with torch.inference_mode():
        naive = hubert.model(batch, attention_mask=mask).last_hidden_state[0, : hubert.num_frames(len(short))]
    assert (naive - alone[1]).abs().max() > 1e-2


def test_unset_batch_seconds_runs_one_clip_per_pass_on_cpu(hubert, clips, alone):
    calls = []

    class Counting:
        device = hubert.device

        def features(self, waves):
            calls.append(len(waves))
            return hubert.features(waves)

    out = extract(Counting(), clips, batch_seconds=None)
    assert calls == [1] * len(clips)
    for a, b in zip(alone, out):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_reduced_precision_is_refused_off_cuda():
    from stages.engines.hubert import HubertFeatures, HubertSpec

    with pytest.raises(ValueError, match="needs a CUDA device"):
        HubertFeatures(HubertSpec(seed=0, device="cpu", precision="bf16"))
    with pytest.raises(ValueError, match="precision must be one of"):
        HubertFeatures(HubertSpec(seed=0, device="cpu", precision="fp16"))
