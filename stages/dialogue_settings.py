"""Settings of the dialogue stage (values and their documentation live in conf/stages/dialogue.yaml)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

from omegaconf import MISSING

from pipeline.stage import StageSettings
from stages.llm.settings import EngineSettings, FidelitySettings, PromptTemplate, SamplingSettings

ON_FAILED_TURN = ("cut", "drop")


@dataclass
class TurnRoleSettings:
    """How one side of a generated turn is asked for and checked (the user's question, the answer)."""

    prompt: PromptTemplate = field(default_factory=PromptTemplate)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    output_checks: list[str] = field(default_factory=list)
    max_words: int = MISSING
    max_speech_seconds: Optional[float] = None


@dataclass
class DialogueSettings(StageSettings):
    source_stage: str = MISSING
    instruction_stage: str = MISSING
    response_stage: str = MISSING
    poisson_lambda: float = 2.0
    min_turns: int = 1
    max_turns: int = 5
    on_failed_turn: str = "cut"
    reject_repeated_questions: bool = True
    model: str = MISSING
    dtype: str = "auto"
    max_model_len: Optional[int] = None
    engine: EngineSettings = field(default_factory=EngineSettings)
    question: TurnRoleSettings = field(default_factory=TurnRoleSettings)
    answer: TurnRoleSettings = field(default_factory=TurnRoleSettings)
    structured_output: bool = True
    max_attempts: int = 3
    words_per_minute: float = 150.0
    cache_dir: str = MISSING
    normalizer: str = "rules"
    fidelity: FidelitySettings = field(default_factory=FidelitySettings)

    RUNTIME_FIELDS: ClassVar[frozenset[str]] = StageSettings.RUNTIME_FIELDS | frozenset({"engine", "cache_dir"})

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.min_turns <= self.max_turns <= 127:  # turn numbers are stored as int8
            raise ValueError(f"need 1 <= min_turns <= max_turns <= 127, got {self.min_turns}..{self.max_turns}")
        if self.poisson_lambda < 0:
            raise ValueError(f"poisson_lambda must be >= 0, got {self.poisson_lambda}")
        if self.on_failed_turn not in ON_FAILED_TURN:
            raise ValueError(f"on_failed_turn must be one of {', '.join(ON_FAILED_TURN)}, got {self.on_failed_turn!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
