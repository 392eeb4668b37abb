"""The shared body of the LLM stages (rewrite, respond): text in -> JSON answer -> speakable text.

Per shard: check the inputs, build one chat request per item, answer cached requests from
disk and send the rest to the engine in one batch, parse the JSON answers (failed parses are
retried with another seed, a bounded number of times), normalize for speech, validate.
Every item that does not come out is ledgered with its reason and the offending text.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable, ClassVar, Optional

import pyarrow as pa

from pipeline.errors import ConfigError, ItemFailure
from pipeline.shard_progress import advance
from pipeline.stage import Stage
from stages.llm import fidelity
from stages.llm.json_extract import extract_field
from stages.llm.request_cache import RequestCache, request_key
from stages.llm.requests import ChatRequest, Generation, Sampling
from stages.llm.settings import LLMStageSettings
from stages.model_paths import require_local
from stages.text import nemo_normalizer
from stages.text import validate as checks
from stages.text.normalizers import get_normalizer
from stages.text.validate import Problem


def _empty(text: str) -> Optional[Problem]:
    return None if text.strip() else Problem("nothing left to speak", text)


# Check name (as written in conf/, also the ledger reason) -> check. Settings reach the
# limit checks through the stage.
INPUT_CHECKS: dict[str, Callable[[str], Optional[Problem]]] = {
    "prompt_injection": checks.looks_like_prompt_injection,
    "not_english": checks.not_english,
}
OUTPUT_CHECKS = ("empty_output", "unreadable_chars", "refusal", "not_english", "too_many_words",
                 "too_long_to_speak")


def item_seed(run_seed: int, kind: str, item_id: str, attempt: int) -> int:
    """A per-item seed: the same item gets the same generation whatever shard or batch it is in."""
    blob = f"{run_seed}/{kind}/{item_id}/{attempt}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


@dataclass
class Item:
    position: int
    id: str
    text: str
    messages: list[dict[str, str]]
    attempts: int = 0
    generation: Optional[Generation] = None
    seed: int = 0


class LLMStage(Stage):
    Settings: ClassVar = LLMStageSettings
    # (spoken text, raw model output, meta JSON) column names, set by each stage.
    output_columns: ClassVar[tuple[str, str, str]]
    # (embedding similarity, judge score) column names and the ledger reason below their bounds.
    fidelity_columns: ClassVar[tuple[str, str]]
    fidelity_reason: ClassVar[str]

    # -- contract ---------------------------------------------------------------------------
    def input_columns(self) -> dict[str, list[str]]:
        return {self.settings.input_stage: [self.settings.input_column]}

    def output_schema(self) -> pa.Schema:
        text, raw, meta = self.output_columns
        similarity, judge = self.fidelity_columns
        return pa.schema([("id", pa.string()), (text, pa.string()), (raw, pa.string()), (meta, pa.string()),
                          (similarity, pa.float32()), (judge, pa.int8())])

    def check(self) -> None:
        s = self.settings
        if s.normalizer != "rules" and not nemo_normalizer.available():
            raise ConfigError(f"stages.{self.name}.normalizer={s.normalizer} needs NeMo text processing: "
                              "pip install 'instructs2s[nemo]' (or normalizer=rules)")
        if s.engine.name == "vllm_offline" or s.engine.launch:  # a remote server's paths are its own
            require_local(s.model, f"stages.{self.name}.model")

    def setup(self) -> None:
        from stages.llm.engine_pool import get_engine

        s = self.settings
        unknown = [c for c in s.input_checks if c not in INPUT_CHECKS]
        unknown += [c for c in s.output_checks if c not in OUTPUT_CHECKS]
        if unknown:
            raise ConfigError(f"unknown checks {unknown}; input: {sorted(INPUT_CHECKS)}, output: {list(OUTPUT_CHECKS)}")
        self.engine, self.weights = get_engine(s.model, s.dtype, s.max_model_len, s.engine, self.context["model_cache"])
        self.normalize = get_normalizer(s.normalizer, self.context["model_cache"], results_dir=s.cache_dir)
        self.cache = RequestCache(s.cache_dir)
        self.embedder = fidelity.load_embedder(s.fidelity, self.context["model_cache"])

    def engine_versions(self) -> dict[str, str]:
        versions = {"prompt_hash": self.prompt_hash()}
        if hasattr(self, "engine"):
            versions.update(self.weights)
            versions.update(self.engine.identity())
            versions.update(fidelity.identity(self.settings.fidelity, self.embedder))
        return versions

    def process(self, rows: list[dict]) -> list[dict | ItemFailure]:
        results: list[dict | ItemFailure | None] = [None] * len(rows)
        items = []
        for position, row in enumerate(rows):
            text = row[self.settings.input_column] or ""
            failure = self.check_input(row["id"], text)
            if failure is not None:
                results[position] = failure
            else:
                items.append(Item(position, row["id"], text, self.messages(text)))
        for item, failure in zip(items, self.check_context(items)):
            if failure is not None:
                results[item.position] = failure
        todo = [item for item in items if results[item.position] is None]
        for attempt in range(self.settings.max_attempts):
            if not todo:
                break
            if attempt:
                self.count("retries", len(todo))
            generations = self.generate([self.request(item, attempt) for item in todo])
            unparsed = []
            for item, generation in zip(todo, generations):
                item.attempts, item.generation = attempt + 1, generation
                item.seed = item_seed(self.context["seed"], self.settings.kind, item.id, attempt)
                if generation.error is not None:
                    results[item.position] = self.fail(item.id, generation.error, f"{generation.error_detail} | input: {item.text!r}")
                    continue
                answer = self.parse(generation)
                if answer is None:
                    unparsed.append(item)
                else:
                    results[item.position] = self.finish(item, answer)
            todo = unparsed
        for item in todo:
            results[item.position] = self.fail(item.id, "parse_failed", self.parse_problem(item))
        fidelity.check(self, items, results)
        return results  # type: ignore[return-value]

    # -- steps ------------------------------------------------------------------------------
    def prompt_hash(self) -> str:
        p = self.settings.prompt
        return hashlib.sha256(json.dumps([p.system, p.user, p.answer_key]).encode()).hexdigest()[:16]

    def messages(self, text: str) -> list[dict[str, str]]:
        p = self.settings.prompt
        return [{"role": "system", "content": p.system.strip()},
                {"role": "user", "content": p.user.replace("{text}", text.strip())}]

    def json_schema(self) -> Optional[dict]:
        if not self.settings.structured_output:
            return None
        key = self.settings.prompt.answer_key
        return {"type": "object", "properties": {key: {"type": "string"}}, "required": [key],
                "additionalProperties": False}

    def request(self, item: Item, attempt: int) -> ChatRequest:
        s = self.settings.sampling
        return ChatRequest(
            messages=item.messages,
            sampling=Sampling(s.temperature, s.top_p, s.max_tokens, s.repetition_penalty),
            seed=item_seed(self.context["seed"], self.settings.kind, item.id, attempt),
            json_schema=self.json_schema(),
        )

    def check_input(self, item_id: str, text: str) -> Optional[ItemFailure]:
        if not text.strip():
            return self.fail(item_id, "input_empty", repr(text))
        for name in self.settings.input_checks:
            problem = INPUT_CHECKS[name](text)
            if problem is not None:
                return self.fail(item_id, f"input_{name}", f"{problem.reason}: {problem.fragment!r} | input: {text!r}")
        return None

    def check_context(self, items: list[Item]) -> list[Optional[ItemFailure]]:
        """Inputs that leave no room for the answer are skipped, never truncated."""
        limit = self.engine.context_limit()
        if limit is None or not items:
            return [None] * len(items)
        room = self.settings.sampling.max_tokens
        counts = self.engine.prompt_tokens([self.request(item, 0) for item in items])
        failures: list[Optional[ItemFailure]] = []
        for item, count in zip(items, counts):
            if count is not None and count + room > limit:
                failures.append(self.fail(
                    item.id, "over_context",
                    f"prompt is {count} tokens; with max_tokens={room} it needs {count + room} of the "
                    f"model's {limit}-token context | input: {item.text!r}",
                ))
            else:
                failures.append(None)
        return failures

    def generate(self, requests: list[ChatRequest], metric_prefix: str = "") -> list[Generation]:
        """Cached generations from disk, the rest from the engine (each cached as it finishes).
        Metrics are named with `metric_prefix` (the judge's own); only answers move the progress bar."""
        keys = [request_key(self.weights, r) for r in requests]
        found = [self.cache.get(k) for k in keys]
        misses = [i for i, g in enumerate(found) if g is None]
        self.count(f"{metric_prefix}cache_hits", len(requests) - len(misses))
        if not metric_prefix:
            advance(len(requests) - len(misses))

        def keep(j: int, generation: Generation) -> None:
            self.cache.put(keys[misses[j]], generation)
            if not metric_prefix:
                advance()

        fresh = self.engine.generate([requests[i] for i in misses], keep) if misses else []
        for i, generation in zip(misses, fresh):
            found[i] = generation
            if generation.error is None:
                self.count(f"{metric_prefix}generated")
                self.count(f"{metric_prefix}generated_tokens", generation.completion_tokens)
        return found  # type: ignore[return-value]

    def parse(self, generation: Generation) -> Optional[str]:
        if generation.finish_reason == "length":
            return None  # cut off: whatever JSON it holds is incomplete
        return extract_field(generation.text, self.settings.prompt.answer_key)

    def parse_problem(self, item: Item) -> str:
        g = item.generation
        assert g is not None
        if g.finish_reason == "length":
            why = f"hit max_tokens={self.settings.sampling.max_tokens} before the answer ended"
        else:
            why = f"no JSON field {self.settings.prompt.answer_key!r} in the answer"
        return f"{why} after {item.attempts} attempt(s) | raw: {g.text!r}"

    def check_output(self, text: str) -> Optional[tuple[str, Problem]]:
        s = self.settings
        for name in s.output_checks:
            if name == "empty_output":
                problem = _empty(text)
            elif name == "unreadable_chars":
                problem = checks.leftover_unreadable(text)
            elif name == "refusal":
                problem = checks.looks_like_refusal(text)
            elif name == "not_english":
                problem = checks.not_english(text)
            elif name == "too_many_words":
                problem = checks.too_many_words(text, s.max_words)
            elif s.max_speech_seconds is not None:  # too_long_to_speak
                problem = checks.too_long_to_speak(text, s.max_speech_seconds, s.words_per_minute)
            else:
                problem = None
            if problem is not None:
                return name, problem
        return None

    def finish(self, item: Item, answer: str) -> dict | ItemFailure:
        spoken = self.normalize(answer)
        found = self.check_output(spoken)
        if found is not None:
            name, problem = found
            return self.fail(item.id, name, f"{problem.reason}: {problem.fragment!r} | text: {spoken!r}")
        g = item.generation
        assert g is not None
        meta = {
            **self.weights,
            "prompt_hash": self.prompt_hash(),
            "seed": item.seed,
            "attempts": item.attempts,
            "cache_hit": g.cache_hit,
            "finish_reason": g.finish_reason,
            "completion_tokens": g.completion_tokens,
        }
        text_col, raw_col, meta_col = self.output_columns
        similarity_col, judge_col = self.fidelity_columns  # filled in by fidelity.check
        return {"id": item.id, text_col: spoken, raw_col: g.text, meta_col: json.dumps(meta, sort_keys=True),
                similarity_col: None, judge_col: None}
