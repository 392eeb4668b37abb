"""Pre-filters for text that cannot become good speech. Each returns a reason or None."""
from __future__ import annotations

import re

_CODE_FENCE = re.compile(r"```|~~~")
_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import|#include|public |private |function |var |let |const |"
    r"SELECT |INSERT |for\s*\(|while\s*\(|if\s*\(|return\b|print\(|console\.log|<\w+[^>]*>)|[;{}]\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$|^[^\t\n]+\t[^\t\n]+\t", re.MULTILINE)
_URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
_MATH = re.compile(r"\\(frac|sqrt|sum|int|alpha|beta|theta|pi|cdot|times|le|ge)\b|\$[^$]+\$|\^\{|_\{|∫|∑|√|≤|≥")
_EQUATION = re.compile(r"[\d\w)]\s*[=<>^*/]\s*[\d\w(]")


def code_reason(text: str) -> str | None:
    if _CODE_FENCE.search(text):
        return "contains a fenced code block"
    lines = [line for line in text.splitlines() if line.strip()]
    code_lines = sum(1 for line in lines if _CODE_LINE.search(line))
    if code_lines >= 2 or (lines and code_lines / len(lines) > 0.5 and len(lines) > 1):
        return f"{code_lines} of {len(lines)} lines look like source code"
    return None


def table_reason(text: str) -> str | None:
    rows = _TABLE_ROW.findall(text)
    return f"contains a table ({len(rows)} table rows)" if len(rows) >= 2 else None


def url_reason(text: str, max_share: float) -> str | None:
    words = text.split()
    urls = _URL.findall(text)
    if words and urls and len(urls) / len(words) > max_share:
        return f"mostly URLs ({len(urls)} of {len(words)} words)"
    return None


_CODE_REQUEST = re.compile(
    r"\b(write|create|implement|generate|debug|fix)\b.{0,40}\b(python|java|javascript|sql|c\+\+|rust|"
    r"html|css|bash|code|function|program|script|query|regex|algorithm in)\b",
    re.IGNORECASE,
)


def code_request_reason(text: str) -> str | None:
    match = _CODE_REQUEST.search(text)
    return f"asks for code ({match.group(0)!r}), which has no spoken answer" if match else None


def math_reason(text: str, max_equations: int) -> str | None:
    text = _URL.sub(" ", text)
    if _MATH.search(text):
        return "contains math notation (LaTeX or math symbols)"
    equations = len(_EQUATION.findall(text))
    return f"heavy math notation ({equations} operators between terms)" if equations > max_equations else None


def length_reason(text: str, max_chars: int) -> str | None:
    return f"{len(text)} characters, over the limit of {max_chars}" if len(text) > max_chars else None
