"""The rewrite stage's generation speed against calling `vllm.LLM.chat` directly, and server
mode against offline mode: same prompts (the bundled sample), same sampling parameters, same
per-item seeds, local profile (SmolLM2-135M on the CPU build of vLLM).

The stage and the direct call share one loaded engine and alternate, so machine load hits
both alike; each figure is the median of REPEATS runs. The stage starts each run with an empty
request cache, so it generates everything (parse retries included in its tokens and time).
Target: stage / direct >= 0.90.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from pipeline.cli import load_config
from stages.llm import engine_pool
from stages.llm_stage import Item
from stages.rewrite import RewriteStage

REPEATS = 3


def sample_prompts(run) -> list[dict]:
    """The prompts the pipeline would feed the rewrite stage: the sample through ingest."""
    from pipeline.errors import ItemFailure
    from stages.ingest import IngestStage

    node = next(n for n in run.stages if n.name == "ingest")
    ingest = IngestStage("ingest", node.settings, run.context)
    ingest.setup()
    rows = ingest.process(list(ingest.read()))
    return [{"id": r["id"], "prompt": r["prompt"]} for r in rows if not isinstance(r, ItemFailure)]


def stage_for(run, **engine_changes) -> RewriteStage:
    node = next(n for n in run.stages if n.name == "rewrite")
    settings = replace(node.settings, engine=replace(node.settings.engine, **engine_changes))
    stage = RewriteStage("rewrite", settings, run.context)
    stage.setup()
    return stage


def run_stage(stage: RewriteStage, rows: list[dict], cache_dir: Path) -> tuple[int, float]:
    stage.cache.root = cache_dir  # empty: every request is generated
    stage.metrics.clear()
    started = time.perf_counter()
    stage.process(rows)
    return stage.metrics["generated_tokens"], time.perf_counter() - started


def run_direct(stage: RewriteStage, rows: list[dict]) -> tuple[int, float]:
    """What the stage asks for, first attempt, straight through `LLM.chat`."""
    engine = stage.engine
    requests = [stage.request(Item(i, r["id"], r["prompt"], stage.messages(r["prompt"])), 0)
                for i, r in enumerate(rows)]
    started = time.perf_counter()
    outputs = engine.llm.chat([r.messages for r in requests], [engine.sampling_params(r) for r in requests],
                              use_tqdm=False)
    elapsed = time.perf_counter() - started
    return sum(len(o.outputs[0].token_ids) for o in outputs), elapsed


def rate(samples: list[tuple[int, float]]) -> float:
    return statistics.median(tokens / seconds for tokens, seconds in samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        run = load_config([f"data_root={scratch}", "progress=false"])
        rows = sample_prompts(run)
        # Drop the items the stage would skip before generating, so both sides get the same prompts.
        stage = stage_for(run)
        kept = [r for r in rows if stage.check_input(r["id"], r["prompt"]) is None]
        print(f"{len(kept)} prompts from the bundled sample; model {stage.weights['model']}, "
              f"max_tokens={stage.settings.sampling.max_tokens}, structured output on")
        run_direct(stage, kept[:4])  # warm-up: schema compilation, prefix cache
        run_stage(stage, kept[:4], scratch_dir / "warm")
        direct, staged = [], []
        for i in range(REPEATS):
            direct.append(run_direct(stage, kept))
            staged.append(run_stage(stage, kept, scratch_dir / f"offline-{i}"))
        engine_pool.close_all()  # free the cores for the server

        server = stage_for(run, name="openai_server", launch=True, max_concurrency=64)
        run_stage(server, kept[:4], scratch_dir / "server-warm")
        served = [run_stage(server, kept, scratch_dir / f"server-{i}") for i in range(REPEATS)]
        engine_pool.close_all()

    d, s, v = rate(direct), rate(staged), rate(served)
    print(f"direct vllm.LLM.chat : {d:8.1f} generated tokens/s  (runs: {fmt(direct)})")
    print(f"rewrite stage        : {s:8.1f} generated tokens/s  (runs: {fmt(staged)})")
    print(f"stage / direct       : {s / d:8.3f}  (target >= 0.90)")
    print(f"rewrite via server   : {v:8.1f} generated tokens/s  (runs: {fmt(served)})")
    print(f"server / offline     : {v / s:8.3f}")


def fmt(samples: list[tuple[int, float]]) -> str:
    return ", ".join(f"{t} tok in {sec:.1f}s" for t, sec in samples)


if __name__ == "__main__":
    main()
