"""What an LLM stage asks an engine for, and what comes back. Engine-neutral."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int
    repetition_penalty: Optional[float] = None  # None: the engine's default (no penalty)


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    sampling: Sampling
    seed: int
    json_schema: Optional[dict[str, Any]] = None  # constrain the answer to this schema


@dataclass
class Generation:
    text: str = ""
    finish_reason: str = ""  # "stop", "length", ...
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Set when the engine refused this one request (e.g. over the context); the item is
    # ledgered with it. Never cached.
    error: Optional[str] = None
    error_detail: str = ""
    cache_hit: bool = field(default=False, compare=False)


OnDone = Callable[[int, Generation], None]


class ChatEngine(Protocol):
    """An engine generates a batch of chat requests, reporting each as soon as it finishes."""

    def identity(self) -> dict[str, str]:
        """Model and engine versions, for the ledger."""

    def context_limit(self) -> Optional[int]:
        """Max tokens of prompt plus answer, when known."""

    def prompt_tokens(self, requests: list[ChatRequest]) -> list[Optional[int]]:
        """Prompt length in tokens per request (None where the engine cannot tell)."""

    def generate(self, requests: list[ChatRequest], on_done: OnDone) -> list[Generation]:
        """All requests at once, so the engine can batch; `on_done(i, gen)` as each finishes."""
