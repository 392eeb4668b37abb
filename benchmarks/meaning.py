"""How well the LLM stages' fidelity checks agree with a person, on hand-labelled pairs:

- rewrite's meaning check: (original, rewrite) in tests/llm/meaning_pairs.tsv, labelled `same` or
  `changed` (the first 30 are the local model's rewrites of the bundled sample, the rest written by
  hand: faithful restatements and realistic subtle changes such as a swapped unit, place or number);
- respond's answer check: (spoken instruction, response) in tests/llm/answer_pairs.tsv, labelled
  `answers` or `off_topic` (the first 27 are the local model's responses in a sample build, the rest
  written by hand: real answers, short ones included, and answers to a neighbouring question).

For the embedding similarity at several thresholds and for the judge (the local profile's
model, through the stage's own engine and prompt) at several score cut-offs: accuracy, and
precision / recall for the bad label (a pair below the bound is called bad). The defaults
in conf/stages/rewrite.yaml and respond.yaml come from these tables.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.cli import load_config

TESTS = Path(__file__).resolve().parent.parent / "tests" / "llm"


@dataclass(frozen=True)
class PairSet:
    stage: str  # the stage whose check is measured
    path: Path
    good: str  # the label of a pair the check should keep
    bad: str  # ... and of one it should ledger
    thresholds: tuple[float, ...]


PAIR_SETS = [
    PairSet("rewrite", TESTS / "meaning_pairs.tsv", "same", "changed", (0.3, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)),
    PairSet("respond", TESTS / "answer_pairs.tsv", "answers", "off_topic", (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)),
]
JUDGE_CUTOFFS = [2, 3, 4, 5]


def unescape(field: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), field)


def read_pairs(pair_set: PairSet) -> list[tuple[str, str, str]]:
    """(input, output, label) rows; tabs and newlines inside a field are written \\t and \\n."""
    lines = pair_set.path.read_text().splitlines()
    rows = [tuple(unescape(f) for f in line.split("\t")) for line in lines[1:] if line.strip()]
    bad = [r for r in rows if len(r) != 3 or r[2] not in (pair_set.good, pair_set.bad)]
    if bad:
        raise ValueError(f"{pair_set.path}: rows without an (input, output, {pair_set.good}|{pair_set.bad}) "
                         f"triple: {bad[:3]}")
    return rows  # type: ignore[return-value]


def agreement(called_bad: list[bool], truth: list[bool]) -> tuple[float, float, float]:
    """(accuracy, precision, recall) of calling a pair bad."""
    hits = sum(c and t for c, t in zip(called_bad, truth))
    accuracy = sum(c == t for c, t in zip(called_bad, truth)) / len(truth)
    precision = hits / max(1, sum(called_bad))
    recall = hits / max(1, sum(truth))
    return accuracy, precision, recall


def table_row(name: str, called: list[bool], truth: list[bool]) -> str:
    accuracy, precision, recall = agreement(called, truth)
    return f"{name:<28} {accuracy:>8.2f} {precision:>10.2f} {recall:>7.2f} {sum(called):>8}"


def judge_scores(run, pair_set: PairSet, pairs) -> list[int | None]:
    """The stage's own judge (its engine and prompt, judge switched on) scoring each pair."""
    from pipeline.registry import stage_class
    from stages.llm.fidelity import judge_request
    from stages.llm.judge import parse_score
    from stages.llm_stage import Item

    node = next(n for n in run.stages if n.name == pair_set.stage)
    settings = replace(node.settings, fidelity=replace(node.settings.fidelity, judge=True))
    stage = stage_class(settings.kind)(pair_set.stage, settings, run.context)
    stage.setup()
    items = [Item(i, f"pair-{i}", given, []) for i, (given, _, _) in enumerate(pairs)]
    requests = [judge_request(stage, item, answer) for item, (_, answer, _) in zip(items, pairs)]
    generations = stage.generate(requests, metric_prefix="judge_")
    print(f"judge: {stage.weights['model']}, structured output {'on' if settings.structured_output else 'off'}, "
          f"{stage.metrics['judge_generated']} generated, {stage.metrics['judge_cache_hits']} cached")
    return [parse_score(g.text, settings.fidelity.judge_prompt.answer_key) for g in generations]


def report(run, pair_set: PairSet) -> None:
    from stages.engines.sentence_embedding import get_embedder

    pairs = read_pairs(pair_set)
    labels = [label for _, _, label in pairs]
    truth = [label == pair_set.bad for label in labels]
    print(f"\n{pair_set.stage}: {len(pairs)} labelled pairs ({labels.count(pair_set.good)} {pair_set.good}, "
          f"{labels.count(pair_set.bad)} {pair_set.bad}) from {pair_set.path.name}")
    fidelity = next(n for n in run.stages if n.name == pair_set.stage).settings.fidelity
    embedder = get_embedder(fidelity.embedding_model, run.context["model_cache"])
    similarity = embedder.similarity([p[0] for p in pairs], [p[1] for p in pairs])
    scores = judge_scores(run, pair_set, pairs)

    print(f"{f'signal ({pair_set.bad} when)':<28} {'accuracy':>8} {'precision':>10} {'recall':>7} {pair_set.bad:>8}")
    print(table_row(f"(all {pair_set.good})", [False] * len(pairs), truth))
    for threshold in pair_set.thresholds:
        print(table_row(f"similarity < {threshold}", [s < threshold for s in similarity], truth))
    for cutoff in JUDGE_CUTOFFS:
        print(table_row(f"judge < {cutoff}", [s is not None and s < cutoff for s in scores], truth))
    print(f"judge unreadable: {sum(s is None for s in scores)} of {len(scores)}; scores given: "
          + ", ".join(f"{k}: {scores.count(k)}" for k in range(1, 6)))
    for label in (pair_set.good, pair_set.bad):
        got = sorted(s for s, lab in zip(similarity, labels) if lab == label)
        print(f"similarity of `{label}` pairs: min {got[0]:.2f}, median {got[len(got) // 2]:.2f}, max {got[-1]:.2f}")


def main() -> None:
    from stages.llm import engine_pool

    with tempfile.TemporaryDirectory() as scratch:
        run = load_config([f"data_root={scratch}", "progress=false"])
        try:
            for pair_set in PAIR_SETS:
                report(run, pair_set)
        finally:
            engine_pool.close_all()


if __name__ == "__main__":
    main()
