"""The two writers of a generated turn, each the LLM stages' own machinery (engine pool, request
cache, per-request seeds, JSON answers with retries, normalizer, output checks) on rows
{"id": turn id, "text": what the writer reads}:

- QuestionWriter reads the transcript of the earlier turns and writes the user's next question;
- AnswerWriter reads that question and answers it in the chat of the earlier turns, with the
  answer check (similarity of question and answer) of the respond stage.
"""
from __future__ import annotations

import dataclasses

from stages.dialogue_settings import DialogueSettings, TurnRoleSettings
from stages.llm.requests import ChatRequest, Generation
from stages.llm.settings import FidelitySettings, LLMStageSettings
from stages.llm_stage import Item, LLMStage

TEXT = "text"  # the column a writer reads


def writer_settings(s: DialogueSettings, role: TurnRoleSettings, name: str,
                    fidelity: FidelitySettings) -> LLMStageSettings:
    return LLMStageSettings(
        kind=f"{s.kind}/{name}",  # part of every request's seed: the two writers never share one
        input_stage="", input_column=TEXT, model=s.model, dtype=s.dtype, max_model_len=s.max_model_len,
        engine=s.engine, prompt=role.prompt, sampling=role.sampling, structured_output=s.structured_output,
        max_attempts=s.max_attempts, input_checks=[], output_checks=list(role.output_checks),
        max_words=role.max_words, max_speech_seconds=role.max_speech_seconds,
        words_per_minute=s.words_per_minute, cache_dir=s.cache_dir, normalizer=s.normalizer, fidelity=fidelity,
    )


class TurnWriter(LLMStage):
    output_columns = ("spoken", "raw", "meta")
    fidelity_columns = ("similarity", "judge")
    fidelity_reason = "off_topic"
    metric_prefix = ""  # the writer's metrics (cache hits, tokens) are kept apart in the shard's ledger

    def generate(self, requests: list[ChatRequest], metric_prefix: str = "") -> list[Generation]:
        # Always prefixed: that also keeps the writers off the shard's progress bar, which
        # counts dialogues (the dialogue stage moves it).
        return super().generate(requests, metric_prefix or self.metric_prefix)


class QuestionWriter(TurnWriter):
    metric_prefix = "question_"


class AnswerWriter(TurnWriter):
    metric_prefix = "answer_"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.history: dict[str, list[dict[str, str]]] = {}  # turn id -> chat messages of the earlier turns

    def request(self, item: Item, attempt: int) -> ChatRequest:
        system, question = self.messages(item.text)
        return dataclasses.replace(super().request(item, attempt),
                                   messages=[system, *self.history[item.id], question])
