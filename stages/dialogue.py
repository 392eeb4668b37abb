"""dialogue: a single-turn item (ingest + rewrite + respond) -> a multi-turn dialogue, one row per turn.

Each dialogue plans N turns (a seeded Poisson draw, stages.dialogue_turns). Turn 1 is the item
as rewrite and respond left it; turns 2..N are generated turn by turn, all dialogues' turn i in
one batch before turn i+1: first the user's next spoken question from the transcript of the
earlier turns, then its answer in the chat of the earlier turns (stages.dialogue_roles). Each
generated turn is checked like a single item, and its question may not repeat an earlier one. A
failed turn is ledgered as `turn<i>_<reason>` (`turn<i>_question_<reason>` for the question)
under its turn id, and the dialogue is cut before it or dropped whole (`on_failed_turn`), every
other planned turn ledgered with it.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import pyarrow as pa

from pipeline.errors import ConfigError, ItemFailure
from pipeline.shard_progress import advance
from pipeline.stage import Stage
from stages.dialogue_roles import TEXT, AnswerWriter, QuestionWriter, writer_settings
from stages.dialogue_settings import DialogueSettings
from stages.dialogue_turns import Turn, chat_history, planned_turns, transcript, turn_id
from stages.llm.json_extract import extract_field
from stages.llm.settings import FidelitySettings
from stages.llm_stage import OUTPUT_CHECKS

CUT = "cut_after_failed_turn"
DROPPED = "dropped_with_failed_turn"


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


@dataclass
class Dialogue:
    id: str
    planned: int
    turns: list[Turn]
    failed: Optional[tuple[int, ItemFailure]] = None  # (turn, its failure)
    rows: list[dict] = field(default_factory=list)
    source: str = ""  # the item's source dataset, carried to every turn

    def wants(self, turn: int) -> bool:
        return self.failed is None and turn <= self.planned


class DialogueStage(Stage):
    Settings: ClassVar = DialogueSettings
    version = "1"
    one_row_per_input: ClassVar[bool] = False

    def __init__(self, name: str, settings: DialogueSettings, context: dict[str, Any]):
        super().__init__(name, settings, context)
        s = settings
        self.asker = QuestionWriter(name, writer_settings(s, s.question, "question", FidelitySettings()), context)
        self.answerer = AnswerWriter(name, writer_settings(s, s.answer, "answer", s.fidelity), context)

    # -- contract ---------------------------------------------------------------------------
    def input_columns(self) -> dict[str, list[str]]:
        s = self.settings
        return {s.source_stage: ["source", "instruction"], s.instruction_stage: ["instruction_spoken", "meaning_similarity"],
                s.response_stage: ["response", "answer_similarity"]}

    def output_schema(self) -> pa.Schema:
        text, f32, i8 = pa.string(), pa.float32(), pa.int8()
        return pa.schema([("id", text), ("dialogue_id", text), ("source", text), ("turn", i8),
                          ("turns_planned", i8), ("num_turns", i8),
                          ("instruction", text), ("instruction_spoken", text), ("response", text),
                          ("meaning_similarity", f32), ("answer_similarity", f32), ("dialogue_meta", text)])

    def check(self) -> None:
        s = self.settings
        for role in ("question", "answer"):
            unknown = [c for c in getattr(s, role).output_checks if c not in OUTPUT_CHECKS]
            if unknown:
                raise ConfigError(f"stages.{self.name}.{role}.output_checks: unknown {unknown}; known: {list(OUTPUT_CHECKS)}")
        self.answerer.check()  # normalizer and model, shared by both writers

    def setup(self) -> None:
        self.asker.setup()
        self.answerer.setup()  # the same engine (engine pool), normalizer and caches

    def engine_versions(self) -> dict[str, str]:
        versions = self.answerer.engine_versions()
        versions["answer_prompt_hash"] = versions.pop("prompt_hash")
        versions["question_prompt_hash"] = self.asker.prompt_hash()
        return versions

    def process(self, rows: list[dict]) -> list[dict | ItemFailure]:
        self.asker.metrics = self.answerer.metrics = self.metrics  # the engine may swap the counter per batch
        dialogues = [self.first_turn(row) for row in rows]
        advance(sum(d.planned == 1 for d in dialogues))
        for turn in range(2, max((d.planned for d in dialogues), default=1) + 1):
            active = [d for d in dialogues if d.wants(turn)]
            if not active:
                break
            self.next_turn(active, turn)
            advance(sum(d.failed is not None or d.planned == turn for d in active))
        return [result for d in dialogues for result in self.results(d)]

    # -- steps ------------------------------------------------------------------------------
    def planned(self, dialogue_id: str) -> int:
        s = self.settings
        return planned_turns(self.context["seed"], dialogue_id, s.poisson_lambda, s.min_turns, s.max_turns)

    def first_turn(self, row: dict) -> Dialogue:
        first = Turn(instruction=row["instruction"], instruction_spoken=row["instruction_spoken"],
                     response=row["response"], meaning_similarity=row["meaning_similarity"],
                     answer_similarity=row["answer_similarity"],
                     meta={"generated": False, "instruction_stage": self.settings.instruction_stage,
                           "response_stage": self.settings.response_stage})
        return Dialogue(row["id"], self.planned(row["id"]), [first], source=row["source"])

    def next_turn(self, active: list[Dialogue], turn: int) -> None:
        """Turn `turn` of every active dialogue: all questions in one batch, then all answers."""
        ids = [turn_id(d.id, turn) for d in active]
        questions = self.asker.process([{"id": i, TEXT: transcript(d.turns)} for i, d in zip(ids, active)])
        asked = []
        for i, d, question in zip(ids, active, questions):
            if not isinstance(question, ItemFailure) and self.settings.reject_repeated_questions:
                question = self.repeated(i, d, question)
            if isinstance(question, ItemFailure):
                d.failed = (turn, dataclasses.replace(question, reason=f"turn{turn}_question_{question.reason}"))
            else:
                asked.append((i, d, question))
        p = self.answerer.settings.prompt
        self.answerer.history = {i: chat_history(d.turns, p.user, p.answer_key) for i, d, _ in asked}
        answers = self.answerer.process([{"id": i, TEXT: q["spoken"]} for i, _, q in asked])
        for (_, d, question), answer in zip(asked, answers):
            if isinstance(answer, ItemFailure):
                d.failed = (turn, dataclasses.replace(answer, reason=f"turn{turn}_{answer.reason}"))
                continue
            written = extract_field(question["raw"], self.asker.settings.prompt.answer_key)
            d.turns.append(Turn(instruction=written or question["spoken"], instruction_spoken=question["spoken"],
                                response=answer["spoken"], answer_similarity=answer["similarity"],
                                meta={"generated": True, "question": json.loads(question["meta"]),
                                      "answer": json.loads(answer["meta"])}))
        self.answerer.history = {}

    def repeated(self, question_id: str, d: Dialogue, question: dict) -> dict | ItemFailure:
        """The question, or its failure when it asks again what an earlier turn asked."""
        words = _words(question["spoken"])
        for number, turn in enumerate(d.turns, start=1):
            if _words(turn.instruction_spoken) == words:
                return self.fail(question_id, "repeated", f"repeats turn {number}: {question['spoken']!r}")
        return question

    def results(self, d: Dialogue) -> list[dict | ItemFailure]:
        kept = d.turns
        out: list[dict | ItemFailure] = []
        if d.failed is not None:
            failed_turn, failure = d.failed
            why = f"turn {failed_turn} of {d.planned} failed ({failure.reason})"
            drop = self.settings.on_failed_turn == "drop"
            if drop:
                out += [self.fail(turn_id(d.id, t), DROPPED, why) for t in range(1, failed_turn)]
                kept = []
            out.append(failure)
            out += [self.fail(turn_id(d.id, t), DROPPED if drop else CUT, why)
                    for t in range(failed_turn + 1, d.planned + 1)]
        rows = [self.row(d, number, turn, len(kept)) for number, turn in enumerate(kept, start=1)]
        return [*rows, *out]

    def row(self, d: Dialogue, number: int, turn: Turn, kept: int) -> dict:
        meta = {**self.asker.weights, "question_prompt_hash": self.asker.prompt_hash(),
                "answer_prompt_hash": self.answerer.prompt_hash(), **turn.meta}
        return {"id": turn_id(d.id, number), "dialogue_id": d.id, "source": d.source, "turn": number,
                "turns_planned": d.planned, "num_turns": kept,
                "instruction": turn.instruction, "instruction_spoken": turn.instruction_spoken,
                "response": turn.response, "meaning_similarity": turn.meaning_similarity,
                "answer_similarity": turn.answer_similarity, "dialogue_meta": json.dumps(meta, sort_keys=True)}
