"""Checks that make one source record safe to carry: parsable, shallow, JSON types only, text
that encodes as UTF-8. A failed check is a reason for the ledger, never an exception."""
from __future__ import annotations

import json

MAX_DEPTH = 32  # Alpaca and UltraChat records are 3 levels deep; deeper is not a record of either


class RowProblem(ValueError):
    """One row cannot be read; the message is the ledger's detail."""


def loads_guarded(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowProblem(f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise RowProblem("invalid JSON: nested too deeply to parse") from None


def check_record(record: object) -> str | None:
    """None when the record can be stored and serialized, else what is wrong with it."""
    stack = [(record, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels (at {where or 'the top'})"
        if isinstance(value, str):
            if problem := text_problem(value):
                return f"{problem} in {where or 'the record'}"
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or text_problem(key):
                    return f"a key that is not UTF-8 text at {where or 'the top'}"
                stack.append((item, depth + 1, f"{where}.{key}" if where else key))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))
        elif not (value is None or isinstance(value, (bool, int, float))):
            return f"a value of type {type(value).__name__} (not JSON) in {where or 'the record'}"
    return None


def text_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(text[exc.start])
        if 0xDC80 <= bad <= 0xDCFF:
            return f"invalid UTF-8 byte 0x{bad - 0xDC00:02x}"
        return f"a lone surrogate \\u{bad:04x}"
    return None
