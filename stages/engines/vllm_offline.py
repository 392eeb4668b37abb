"""vLLM's offline engine (`vllm.LLM`): one per worker, fed a whole shard so it batches freely.

Requests go in with `enqueue_chat` and the engine is stepped here rather than through
`LLM.chat`, which only returns when the last request is done: stepping hands each generation
to the caller the moment it finishes, so the request cache survives a kill mid-shard. The
work done per step is the same as `LLM.chat`'s.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Optional

from pipeline.errors import InfrastructureError
from stages.llm.requests import ChatRequest, Generation, OnDone
from stages.llm.settings import EngineSettings

log = logging.getLogger(__name__)


class VllmOfflineEngine:
    def __init__(self, model_path: str, dtype: str, max_model_len: Optional[int], settings: EngineSettings):
        if settings.cpu_kvcache_gib is not None:
            # Without it the CPU build sizes its KV cache from total RAM.
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = f"{settings.cpu_kvcache_gib:g}"
        import vllm

        optional = {}
        if settings.enable_chunked_prefill is not None:
            optional["enable_chunked_prefill"] = settings.enable_chunked_prefill
        self.vllm_version = vllm.__version__
        self.llm = vllm.LLM(
            model=model_path,
            dtype=dtype,
            max_model_len=max_model_len,
            tensor_parallel_size=settings.tensor_parallel_size,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            enable_prefix_caching=settings.enable_prefix_caching,
            enforce_eager=settings.enforce_eager,
            seed=settings.seed,
            trust_remote_code=settings.trust_remote_code,
            **optional,
        )
        self.tokenizer = self.llm.get_tokenizer()

    def identity(self) -> dict[str, str]:
        return {"engine": "vllm_offline", "vllm": self.vllm_version}

    def context_limit(self) -> Optional[int]:
        return self.llm.llm_engine.model_config.max_model_len

    def prompt_tokens(self, requests: list[ChatRequest]) -> list[Optional[int]]:
        counts = []
        for request in requests:
            text = self.tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
            counts.append(len(self.tokenizer.encode(text, add_special_tokens=False)))
        return counts

    def sampling_params(self, request: ChatRequest):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        s = request.sampling
        extra = {}
        if s.repetition_penalty is not None:
            extra["repetition_penalty"] = s.repetition_penalty
        if request.json_schema is not None:
            extra["structured_outputs"] = StructuredOutputsParams(json=request.json_schema)
        return SamplingParams(
            temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=request.seed, **extra
        )

    def generate(self, requests: list[ChatRequest], on_done: OnDone) -> list[Generation]:
        if not requests:
            return []
        params = [self.sampling_params(r) for r in requests]
        results: list[Optional[Generation]] = [None] * len(requests)
        request_ids: list[str] = []
        engine = self.llm.llm_engine
        try:
            # The engine may have died since the last batch: enqueueing then raises EngineDeadError.
            request_ids = self.llm.enqueue_chat([r.messages for r in requests], params, use_tqdm=False)
            # enqueue_chat returns vLLM's internal ids ("<external>-<random>"); outputs carry the
            # external part.
            position = {rid.rsplit("-", 1)[0]: i for i, rid in enumerate(request_ids)}
            with wake_on_engine_death(engine.engine_core):
                while engine.has_unfinished_requests():
                    for output in engine.step():
                        i = position.get(output.request_id)
                        if i is None or not output.finished:
                            continue
                        best = output.outputs[0]
                        results[i] = Generation(
                            text=best.text,
                            finish_reason=str(best.finish_reason),
                            prompt_tokens=len(output.prompt_token_ids or []),
                            completion_tokens=len(best.token_ids),
                        )
                        on_done(i, results[i])
        except Exception as exc:
            from vllm.v1.engine.exceptions import EngineDeadError

            if isinstance(exc, EngineDeadError):
                raise InfrastructureError(f"the vLLM engine died: {exc}") from exc
            raise
        finally:
            # Interrupted (or failed): drop what is still queued so the next batch starts clean.
            unfinished = [rid for i, rid in enumerate(request_ids) if results[i] is None]
            if unfinished:
                try:
                    engine.abort_request(unfinished, internal=True)
                except Exception:  # a dead engine has nothing left to abort
                    log.debug("could not abort %d requests", len(unfinished), exc_info=True)
        missing = [i for i, g in enumerate(results) if g is None]
        if missing:
            raise RuntimeError(f"vLLM finished without answering {len(missing)} of {len(requests)} requests")
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Stop vLLM's engine processes now rather than at interpreter exit."""
        self.llm.llm_engine.engine_core.shutdown()


@contextlib.contextmanager
def wake_on_engine_death(client, poll_s: float = 0.5):
    """vLLM's in-process client (0.32) waits forever for outputs when its EngineCore process dies
    mid-generation: its monitor marks the engine dead and stops the output thread without
    queueing an error. While generating, watch that mark and queue the error ourselves, so the
    step raises EngineDeadError (an infrastructure failure) instead of hanging."""
    outputs, resources = getattr(client, "outputs_queue", None), getattr(client, "resources", None)
    if outputs is None or resources is None:  # another client kind: nothing to watch
        yield
        return
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(poll_s):
            if getattr(resources, "engine_dead", False):
                from vllm.v1.engine.exceptions import EngineDeadError

                outputs.put_nowait(EngineDeadError())
                return

    thread = threading.Thread(target=watch, name="vllm-engine-death-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
