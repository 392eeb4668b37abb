"""Settings shared by the LLM stages (values and their documentation live in conf/)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

from omegaconf import MISSING

from pipeline.stage import StageSettings


@dataclass
class EngineSettings:
    """How to run the model. Changes speed and placement, never what is asked: not fingerprinted."""

    name: str = "vllm_offline"  # vllm_offline | openai_server
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    enable_prefix_caching: bool = True
    enforce_eager: bool = False
    # None: vLLM's default. The CPU build must run with false when requests carry seeds: a
    # split prefill rewinds the request's generator, which CPU generators cannot do.
    enable_chunked_prefill: Optional[bool] = None
    cpu_kvcache_gib: Optional[float] = None  # VLLM_CPU_KVCACHE_SPACE for CPU builds; None: leave env alone
    seed: int = 0  # engine seed; every request also carries its own
    trust_remote_code: bool = False
    # openai_server only
    base_url: Optional[str] = None  # e.g. http://host:8000/v1; None with launch=true
    served_model_name: Optional[str] = None  # the name the server knows the model by; None: `model`
    api_key_env: str = "OPENAI_API_KEY"  # environment variable holding the key (unset: "EMPTY")
    max_concurrency: int = 32
    timeout_s: float = 600.0
    max_retries: int = 5
    launch: bool = False
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    launch_timeout_s: float = 900.0
    extra_server_args: list[str] = field(default_factory=list)


@dataclass
class PromptTemplate:
    system: str = MISSING
    user: str = MISSING  # `{text}` marks where the item's text goes
    answer_key: str = MISSING  # the one JSON key of the answer


@dataclass
class SamplingSettings:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    repetition_penalty: Optional[float] = None


@dataclass
class JudgePromptTemplate:
    system: str = MISSING
    user: str = MISSING  # `{input}` marks the stage's input, `{output}` its answer
    answer_key: str = MISSING  # the one JSON key of the score


@dataclass
class FidelitySettings:
    """Does an answer keep to its input: embedding similarity and an LLM judge's score, stored
    as columns; an item below a bound is ledgered (the stage names the reason)."""

    embedding_model: Optional[str] = None
    min_similarity: Optional[float] = None
    judge: bool = False
    judge_prompt: JudgePromptTemplate = field(default_factory=JudgePromptTemplate)
    judge_max_tokens: int = 16
    min_judge: Optional[int] = None

    def __post_init__(self):
        if self.min_similarity is not None and not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"fidelity.min_similarity must be between -1 and 1, got {self.min_similarity}")
        if self.min_similarity is not None and self.embedding_model is None:
            raise ValueError("fidelity.min_similarity needs fidelity.embedding_model")
        if self.min_judge is not None and not 1 <= self.min_judge <= 5:
            raise ValueError(f"fidelity.min_judge must be 1..5, got {self.min_judge}")
        if self.min_judge is not None and not self.judge:
            raise ValueError("fidelity.min_judge needs fidelity.judge: true")


@dataclass
class LLMStageSettings(StageSettings):
    input_stage: str = MISSING
    input_column: str = MISSING
    model: str = MISSING
    dtype: str = "auto"
    max_model_len: Optional[int] = None
    engine: EngineSettings = field(default_factory=EngineSettings)
    prompt: PromptTemplate = field(default_factory=PromptTemplate)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    structured_output: bool = True
    max_attempts: int = 3
    input_checks: list[str] = field(default_factory=list)
    output_checks: list[str] = field(default_factory=list)
    max_words: int = MISSING
    max_speech_seconds: Optional[float] = None
    words_per_minute: float = 150.0
    cache_dir: str = MISSING
    normalizer: str = "rules"  # text for speech: rules | hybrid | nemo (stages/text/normalizers.py)
    fidelity: FidelitySettings = field(default_factory=FidelitySettings)

    RUNTIME_FIELDS: ClassVar[frozenset[str]] = StageSettings.RUNTIME_FIELDS | frozenset({"engine", "cache_dir"})
