"""Turns of a dialogue: how many are planned, what each holds, and how earlier turns are shown
to the model (a transcript for the user's next question, chat messages for the next answer)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


def turn_id(dialogue_id: str, turn: int) -> str:
    return f"{dialogue_id}-t{turn}"


def planned_turns(run_seed: int, dialogue_id: str, poisson_lambda: float, min_turns: int, max_turns: int) -> int:
    """N ~ Poisson(lambda) clipped to [min_turns, max_turns], from a generator seeded by the run
    seed and the dialogue id alone: the same dialogue plans the same turns in any shard or process."""
    entropy = int.from_bytes(hashlib.sha256(f"{run_seed}/turns/{dialogue_id}".encode()).digest()[:16], "big")
    drawn = int(np.random.default_rng(entropy).poisson(poisson_lambda))
    return min(max(drawn, min_turns), max_turns)


@dataclass
class Turn:
    instruction: str  # written: the source's instruction (turn 1) or the model's question as it wrote it
    instruction_spoken: str
    response: str
    meaning_similarity: Optional[float] = None  # turn 1 only (the rewrite's meaning check)
    answer_similarity: Optional[float] = None
    meta: dict[str, Any] = field(default_factory=dict)


def transcript(turns: list[Turn]) -> str:
    """The conversation so far as the follow-up prompt shows it."""
    lines = []
    for turn in turns:
        lines += [f"User: {turn.instruction_spoken.strip()}", f"Assistant: {turn.response.strip()}"]
    return "\n".join(lines)


def chat_history(turns: list[Turn], user_template: str, answer_key: str) -> list[dict[str, str]]:
    """Earlier turns as chat messages, each side as the answer prompt asks for it (the user's words
    in the prompt's user template, the assistant's in its JSON answer)."""
    messages = []
    for turn in turns:
        messages.append({"role": "user", "content": user_template.replace("{text}", turn.instruction_spoken.strip())})
        messages.append({"role": "assistant", "content": json.dumps({answer_key: turn.response.strip()})})
    return messages
