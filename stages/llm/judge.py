"""An LLM judge: the stage's own model scores, 1 to 5, how well its output keeps to its input
(rewrite: asks for the same thing; respond: answers the question). The prompt is data
(conf/prompts/*_judge.yaml); the answer is one JSON integer, schema-constrained where the
engine can, read back tolerantly where it cannot.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

SCORES = (1, 2, 3, 4, 5)


def judge_schema(key: str) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "integer", "enum": list(SCORES)}}, "required": [key],
            "additionalProperties": False}


def judge_messages(system: str, user: str, input_text: str, output_text: str) -> list[dict[str, str]]:
    # One pass over the template: an input that itself contains "{output}" stays as written.
    filled = user.replace("{input}", "\0input\0").replace("{output}", "\0output\0")
    filled = filled.replace("\0input\0", input_text.strip()).replace("\0output\0", output_text.strip())
    return [{"role": "system", "content": system.strip()}, {"role": "user", "content": filled}]


def prompt_hash(system: str, user: str, key: str) -> str:
    return hashlib.sha256(json.dumps([system, user, key]).encode()).hexdigest()[:16]


def _score(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and float(value).is_integer() and int(value) in SCORES:
        return int(value)
    if isinstance(value, str) and value.strip() in {str(s) for s in SCORES}:
        return int(value.strip())
    return None


def parse_score(text: str, key: str) -> Optional[int]:
    """The score 1-5 under `key` in the judge's JSON answer, or None when there is none."""
    for load in (json.loads, _repair):
        try:
            value = load(text)
        except Exception:  # json-repair is best effort; what it cannot read has no score
            continue
        candidates = value if isinstance(value, list) else [value]
        for candidate in candidates:
            if isinstance(candidate, dict) and key in candidate:
                found = _score(candidate[key])
                if found is not None:
                    return found
    return None


def _repair(text: str) -> Any:
    import json_repair

    return json_repair.loads(text)
