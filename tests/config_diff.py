"""Two resolved configs compared key by key, for the rehearsal profiles' allow-list tests."""
from __future__ import annotations

import fnmatch


def flatten(node, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value (list items by index); an empty dict or list is a value too."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return {prefix: node}
    out: dict[str, object] = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    if not out:
        out[prefix] = node
    return out


def differing(a: dict[str, object], b: dict[str, object]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


def outside(keys: list[str], allowed: list[str]) -> list[str]:
    """The keys no allow-list pattern (fnmatch) covers."""
    return [k for k in keys if not any(fnmatch.fnmatchcase(k, pattern) for pattern in allowed)]
