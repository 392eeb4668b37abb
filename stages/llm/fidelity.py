"""Does each answer of an LLM stage keep to its input? Two signals, stored as columns of every
kept row, with a bound each (null: none) below which the item is ledgered:

- the cosine similarity of sentence embeddings of input and answer (cheap, every item);
- a 1-5 score from an LLM judge: the stage's own engine, through the request cache, greedy,
  asked only about items the similarity kept.

The stage names the columns and the ledger reason (rewrite: meaning_changed; respond: off_topic).
A judge answer without a readable score leaves the column null and is counted
(judge_unparsed), never a drop: the check failed, not the item.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from stages.llm.judge import judge_messages, judge_schema, parse_score, prompt_hash
from stages.llm.requests import ChatRequest, Sampling
from stages.llm.settings import FidelitySettings

if TYPE_CHECKING:
    from stages.engines.sentence_embedding import SentenceEmbedder
    from stages.llm_stage import Item, LLMStage


def load_embedder(settings: FidelitySettings, model_cache: str) -> Optional[SentenceEmbedder]:
    if settings.embedding_model is None:
        return None
    from stages.engines.sentence_embedding import get_embedder

    return get_embedder(settings.embedding_model, model_cache)


def identity(settings: FidelitySettings, embedder: Optional[SentenceEmbedder]) -> dict[str, str]:
    versions = dict(embedder.identity()) if embedder is not None else {}
    if settings.judge:
        p = settings.judge_prompt
        versions["judge_prompt_hash"] = prompt_hash(p.system, p.user, p.answer_key)
    return versions


def judge_request(stage: LLMStage, item: Item, answer: str) -> ChatRequest:
    from stages.llm_stage import item_seed

    s = stage.settings
    p = s.fidelity.judge_prompt
    return ChatRequest(
        messages=judge_messages(p.system, p.user, item.text, answer),
        sampling=Sampling(temperature=0.0, top_p=1.0, max_tokens=s.fidelity.judge_max_tokens),
        seed=item_seed(stage.context["seed"], f"{s.kind}/judge", item.id, 0),
        json_schema=judge_schema(p.answer_key) if s.structured_output else None,
    )


def check(stage: LLMStage, items: list[Item], results: list) -> None:
    """Fill the fidelity columns of the produced rows in `results`; replace rows below a bound
    by their ledgered failure."""
    s = stage.settings.fidelity
    answer_col = stage.output_columns[0]
    similarity_col, judge_col = stage.fidelity_columns
    kept = [item for item in items if isinstance(results[item.position], dict)]

    def drop(item: Item, why: str) -> None:
        row = results[item.position]
        results[item.position] = stage.fail(item.id, stage.fidelity_reason,
                                            f"{why} | input: {item.text!r} | output: {row[answer_col]!r}")

    if stage.embedder is not None and kept:
        scores = stage.embedder.similarity([i.text for i in kept], [results[i.position][answer_col] for i in kept])
        for item, score in zip(kept, scores):
            results[item.position][similarity_col] = score
            stage.count("similarity_items")
            stage.count("similarity_x1000_sum", round(score * 1000))
            if s.min_similarity is not None and score < s.min_similarity:
                drop(item, f"similarity={score:.3f} min={s.min_similarity}")
        kept = [item for item in kept if isinstance(results[item.position], dict)]

    if s.judge and kept:
        requests = [judge_request(stage, item, results[item.position][answer_col]) for item in kept]
        for item, generation in zip(kept, stage.generate(requests, metric_prefix="judge_")):
            score = None
            if generation.error is None and generation.finish_reason != "length":
                score = parse_score(generation.text, s.judge_prompt.answer_key)
            if score is None:
                stage.count("judge_unparsed")
                continue
            results[item.position][judge_col] = score
            stage.count(f"judge_score_{score}")
            if s.min_judge is not None and score < s.min_judge:
                drop(item, f"judge score={score} min={s.min_judge} (judge said {generation.text!r})")

