"""Deterministic text clean-up and checks for text that a TTS will read."""

from .normalize import normalize_for_speech
from .validate import (
    Problem,
    is_probably_english,
    leftover_unreadable,
    looks_like_prompt_injection,
    looks_like_refusal,
    not_english,
    too_long_to_speak,
    too_many_words,
)

__all__ = [
    "Problem",
    "is_probably_english",
    "leftover_unreadable",
    "looks_like_prompt_injection",
    "looks_like_refusal",
    "normalize_for_speech",
    "not_english",
    "too_long_to_speak",
    "too_many_words",
]
