"""Pull one string field out of a model's JSON answer, tolerating the usual mess.

With structured output the answer is plain JSON. Without it (an endpoint that ignores the
schema) models wrap JSON in code fences, add chatter around it, or use single quotes;
json-repair copes with those. A truncated answer is never "repaired" into an accepted one:
the caller rejects generations that hit the token limit before asking for the field.
"""
from __future__ import annotations

import json
from typing import Any


def _field(value: Any, key: str) -> str | None:
    if isinstance(value, dict):
        found = value.get(key)
        if isinstance(found, str) and found.strip():
            return found
        return None
    if isinstance(value, list):  # several objects: take the first that has the field
        for item in value:
            found = _field(item, key)
            if found is not None:
                return found
    return None


def extract_field(text: str, key: str) -> str | None:
    """The non-empty string under `key`, or None when the text holds no such JSON field."""
    try:
        found = _field(json.loads(text), key)
        if found is not None:
            return found
    except ValueError:
        pass
    import json_repair

    try:
        return _field(json_repair.loads(text), key)
    except Exception:  # json-repair is best effort; anything it cannot read is a parse failure
        return None
