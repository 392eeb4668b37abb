"""The LLM stage tests' run config: settings come from the real conf/, changed per test."""
import pytest

from pipeline.cli import load_config


@pytest.fixture(scope="module")
def run_config(tmp_path_factory):
    """The local profile, with a small KV cache (tests run beside other work on 2 cores)."""
    data_root = tmp_path_factory.mktemp("llm-run")
    return load_config([f"data_root={data_root}", "stages.rewrite.engine.cpu_kvcache_gib=1",
                        # the 135M model rarely keeps a meaning: these tests check the machinery
                        "stages.rewrite.fidelity.min_similarity=null", "stages.respond.fidelity.min_similarity=null"])
