"""What an online build may download: named before it starts, in one line."""
from __future__ import annotations

from pathlib import Path

# Keys whose values name a model, a dataset or a file by its published location.
HUB_KEYS = ("model", "asr_model", "checkpoint", "dataset", "encoder_model", "llm_model")


def hub_references(config: dict) -> list[str]:
    """Values of HUB_KEYS anywhere in the resolved config that are not local files."""
    found: list[str] = []
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in HUB_KEYS and isinstance(value, str) and value and not _is_local(value):
                    found.append(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(set(found))


def _is_local(value: str) -> bool:
    return value.startswith(("/", "~", ".", "bundled:")) or Path(value).exists()
