"""A client for any OpenAI-compatible chat endpoint (a vLLM server on a cluster, or another).

Bounded concurrency (a thread pool), per-request timeouts and retries with exponential
back-off (the `openai` client's own, on connection errors, 408/409/429 and 5xx). Optionally
launches a vLLM server on this machine and stops it at exit. `vllm serve` cannot be used
with the CPU build (it looks up package metadata under another name), so the server starts
as `python -m vllm.entrypoints.openai.api_server`.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Optional

from pipeline.errors import InfrastructureError
from stages.llm.requests import ChatRequest, Generation, OnDone
from stages.llm.settings import EngineSettings

log = logging.getLogger(__name__)

_CONTEXT_WORDS = ("context length", "maximum context", "max_model_len", "too long")


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalVllmServer:
    """A vLLM OpenAI server child process on this machine; always stopped by `stop()` or at exit."""

    def __init__(self, model_path: str, served_name: str, dtype: str, max_model_len: Optional[int],
                 settings: EngineSettings):
        self.host = settings.host
        self.port = settings.port or free_port(settings.host)
        self.timeout_s = settings.launch_timeout_s
        args = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model_path, "--served-model-name", served_name,
            "--host", self.host, "--port", str(self.port), "--dtype", dtype,
            "--tensor-parallel-size", str(settings.tensor_parallel_size),
            "--gpu-memory-utilization", str(settings.gpu_memory_utilization),
            "--seed", str(settings.seed),
        ]
        if max_model_len:
            args += ["--max-model-len", str(max_model_len)]
        args.append("--enable-prefix-caching" if settings.enable_prefix_caching else "--no-enable-prefix-caching")
        if settings.enforce_eager:
            args.append("--enforce-eager")
        if settings.enable_chunked_prefill is not None:
            args.append("--enable-chunked-prefill" if settings.enable_chunked_prefill else "--no-enable-chunked-prefill")
        if settings.trust_remote_code:
            args.append("--trust-remote-code")
        args += list(settings.extra_server_args)
        env = dict(os.environ)
        if settings.cpu_kvcache_gib is not None:
            env["VLLM_CPU_KVCACHE_SPACE"] = f"{settings.cpu_kvcache_gib:g}"
        self.log_path = tempfile.NamedTemporaryFile(prefix="vllm-server-", suffix=".log", delete=False).name
        log.info("starting vLLM server on %s:%d (log: %s)", self.host, self.port, self.log_path)
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        atexit.register(self.stop)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - chars))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        url = f"http://{self.host}:{self.port}/health"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise InfrastructureError(
                    f"vLLM server exited with code {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(1.0)
        self.stop()
        raise InfrastructureError(f"vLLM server not healthy after {self.timeout_s:g} s; log {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # its engine processes exit with it
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        atexit.unregister(self.stop)


class OpenAIServerEngine:
    def __init__(self, model: str, model_path: str, dtype: str, max_model_len: Optional[int],
                 settings: EngineSettings):
        from openai import OpenAI

        self.settings = settings
        self.model_name = settings.served_model_name or model
        self.max_model_len = max_model_len
        self.server: Optional[LocalVllmServer] = None
        base_url = settings.base_url
        if settings.launch:
            self.server = LocalVllmServer(model_path, self.model_name, dtype, max_model_len, settings)
            self.server.wait_healthy()
            base_url = self.server.base_url
        if not base_url:
            raise InfrastructureError("openai_server engine needs engine.base_url, or engine.launch=true")
        self.client = OpenAI(
            base_url=base_url,
            api_key=os.environ.get(settings.api_key_env) or "EMPTY",
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )
        self.server_version = self._check_model()

    def _check_model(self) -> str:
        import openai

        try:
            served = self.client.models.list()
        except openai.APIError as exc:
            raise InfrastructureError(f"endpoint {self.client.base_url} unreachable: {exc}") from exc
        names = [m.id for m in served.data]
        if self.model_name not in names:
            raise InfrastructureError(f"endpoint {self.client.base_url} serves {names}, not {self.model_name!r}")
        card = next(m for m in served.data if m.id == self.model_name)
        if self.max_model_len is None:
            self.max_model_len = getattr(card, "max_model_len", None)
        return str(getattr(card, "owned_by", "") or "")

    def identity(self) -> dict[str, str]:
        return {"engine": "openai_server", "endpoint": str(self.client.base_url), "served_by": self.server_version}

    def context_limit(self) -> Optional[int]:
        return self.max_model_len

    def prompt_tokens(self, requests: list[ChatRequest]) -> list[Optional[int]]:
        # Counted by the server: it answers 400 when prompt plus max_tokens exceed the context.
        return [None] * len(requests)

    def _one(self, request: ChatRequest) -> Generation:
        import openai

        s = request.sampling
        extra_body = {}
        if s.repetition_penalty is not None:
            extra_body["repetition_penalty"] = s.repetition_penalty  # a vLLM extension
        kwargs = {}
        if request.json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True},
            }
        try:
            reply = self.client.chat.completions.create(
                model=self.model_name, messages=request.messages, temperature=s.temperature, top_p=s.top_p,
                max_tokens=s.max_tokens, seed=request.seed, extra_body=extra_body or None, **kwargs,
            )
        except openai.BadRequestError as exc:
            message = str(exc)
            reason = "over_context" if any(w in message.lower() for w in _CONTEXT_WORDS) else "engine_rejected"
            return Generation(error=reason, error_detail=message)
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            where = f" (server log: {self.server.log_path})" if self.server else ""
            raise InfrastructureError(f"endpoint {self.client.base_url} failed after retries: {exc}{where}") from exc
        choice = reply.choices[0]
        usage = reply.usage
        return Generation(
            text=choice.message.content or "",
            finish_reason=str(choice.finish_reason),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def generate(self, requests: list[ChatRequest], on_done: OnDone) -> list[Generation]:
        results: list[Optional[Generation]] = [None] * len(requests)
        pool = ThreadPoolExecutor(max_workers=max(1, self.settings.max_concurrency))
        try:
            futures = {pool.submit(self._one, r): i for i, r in enumerate(requests)}
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                on_done(i, results[i])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.client.close()
        if self.server is not None:
            self.server.stop()
