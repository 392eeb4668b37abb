"""Real engines (Piper joe, Whisper tiny.en), loaded once per test session."""
from __future__ import annotations

import pytest
from speech_helpers import JOE, make_speak

from stages.speak import SpeakStage
from stages.verify import VerifySettings, VerifyStage


@pytest.fixture(scope="session")
def joe_speaker() -> SpeakStage:
    return make_speak([JOE])


@pytest.fixture(scope="session")
def verifier() -> VerifyStage:
    stage = VerifyStage("verify_instruction", VerifySettings(threads=2), {"seed": 1234})
    stage.setup()
    return stage
