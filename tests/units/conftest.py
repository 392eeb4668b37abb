"""Shared fixtures: random-weight HuBERT-base (seeded) and real Piper speech, built once."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic_upstream import speech  # noqa: E402

# Short on purpose: HuBERT-base on 2 shared cores is the slow part of these tests.
SENTENCES = ["Boil it for six minutes.", "Yes.", "Paris is in France.", "Keep your room dark and cool at night."]


@pytest.fixture(scope="session")
def hubert():
    from stages.engines.hubert import HubertFeatures, HubertSpec

    return HubertFeatures(HubertSpec(seed=7, layer=11, device="cpu"))


@pytest.fixture(scope="session")
def clips():
    return [speech(text) for text in SENTENCES]


@pytest.fixture(scope="session")
def batched(hubert, clips):
    return hubert.features(clips)


@pytest.fixture(scope="session")
def alone(hubert, clips):
    return [hubert.features([c])[0] for c in clips]
