"""How well the rewrite stage's meaning check agrees with a person: hand-labelled (original,
rewrite) pairs, tests/llm/meaning_pairs.tsv (label `same` or `changed`; the first 30 are the
local model's rewrites of the bundled sample, the rest written by hand: faithful restatements
and realistic subtle changes such as a swapped unit, place or number).

For the embedding similarity at several thresholds and for the judge (the local profile's
model, through the stage's own engine and prompt) at several score cut-offs: accuracy, and
precision / recall for `changed` (a pair below the bound is called `changed`). The defaults
in conf/stages/rewrite.yaml come from this table.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import replace
from pathlib import Path

from pipeline.cli import load_config

PAIRS = Path(__file__).resolve().parent.parent / "tests" / "llm" / "meaning_pairs.tsv"
SIMILARITY_THRESHOLDS = [0.3, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9]
JUDGE_CUTOFFS = [2, 3, 4, 5]


def unescape(field: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), field)


def read_pairs(path: Path = PAIRS) -> list[tuple[str, str, str]]:
    """(original, rewrite, label) rows; tabs and newlines inside a field are written \\t and \\n."""
    lines = path.read_text().splitlines()
    rows = [tuple(unescape(f) for f in line.split("\t")) for line in lines[1:] if line.strip()]
    bad = [r for r in rows if len(r) != 3 or r[2] not in ("same", "changed")]
    if bad:
        raise ValueError(f"{path}: rows without an (original, rewrite, same|changed) triple: {bad[:3]}")
    return rows  # type: ignore[return-value]


def agreement(called_changed: list[bool], labels: list[str]) -> tuple[float, float, float]:
    """(accuracy, precision, recall) of calling `changed`."""
    truth = [label == "changed" for label in labels]
    hits = sum(c and t for c, t in zip(called_changed, truth))
    accuracy = sum(c == t for c, t in zip(called_changed, truth)) / len(truth)
    precision = hits / max(1, sum(called_changed))
    recall = hits / max(1, sum(truth))
    return accuracy, precision, recall


def table_row(name: str, called: list[bool], labels: list[str]) -> str:
    accuracy, precision, recall = agreement(called, labels)
    return f"{name:<28} {accuracy:>8.2f} {precision:>10.2f} {recall:>7.2f} {sum(called):>8}"


def judge_scores(run, pairs) -> list[int | None]:
    from stages.llm import engine_pool
    from stages.llm.fidelity import judge_request
    from stages.llm.judge import parse_score
    from stages.llm_stage import Item
    from stages.rewrite import RewriteStage

    node = next(n for n in run.stages if n.name == "rewrite")
    settings = replace(node.settings, fidelity=replace(node.settings.fidelity, judge=True))
    stage = RewriteStage("rewrite", settings, run.context)
    stage.setup()
    try:
        items = [Item(i, f"pair-{i}", original, []) for i, (original, _, _) in enumerate(pairs)]
        requests = [judge_request(stage, item, rewrite) for item, (_, rewrite, _) in zip(items, pairs)]
        generations = stage.generate(requests, metric_prefix="judge_")
        print(f"judge: {stage.weights['model']}, structured output {'on' if settings.structured_output else 'off'}, "
              f"{stage.metrics['judge_generated']} generated, {stage.metrics['judge_cache_hits']} cached")
        return [parse_score(g.text, settings.fidelity.judge_prompt.answer_key) for g in generations]
    finally:
        engine_pool.close_all()


def main() -> None:
    from stages.engines.sentence_embedding import get_embedder

    pairs = read_pairs()
    labels = [label for _, _, label in pairs]
    print(f"{len(pairs)} labelled pairs ({labels.count('same')} same, {labels.count('changed')} changed) "
          f"from {PAIRS.name}")
    with tempfile.TemporaryDirectory() as scratch:
        run = load_config([f"data_root={scratch}", "progress=false"])
        rewrite = next(n for n in run.stages if n.name == "rewrite").settings
        embedder = get_embedder(rewrite.fidelity.embedding_model, run.context["model_cache"])
        similarity = embedder.similarity([p[0] for p in pairs], [p[1] for p in pairs])
        scores = judge_scores(run, pairs)

    print(f"\n{'signal (changed when)':<28} {'accuracy':>8} {'precision':>10} {'recall':>7} {'changed':>8}")
    print(table_row("(all same)", [False] * len(pairs), labels))
    for threshold in SIMILARITY_THRESHOLDS:
        print(table_row(f"similarity < {threshold}", [s < threshold for s in similarity], labels))
    unread = sum(s is None for s in scores)
    for cutoff in JUDGE_CUTOFFS:
        print(table_row(f"judge < {cutoff}", [s is not None and s < cutoff for s in scores], labels))
    print(f"judge unreadable: {unread} of {len(scores)}; scores given: "
          + ", ".join(f"{k}: {scores.count(k)}" for k in range(1, 6)))
    for label in ("same", "changed"):
        got = sorted(s for s, lab in zip(similarity, labels) if lab == label)
        print(f"similarity of `{label}` pairs: min {got[0]:.2f}, median {got[len(got) // 2]:.2f}, max {got[-1]:.2f}")


if __name__ == "__main__":
    main()
