"""Clean source text before any model sees it.

ftfy (a maintained library) repairs mojibake, unescapes HTML entities, drops terminal escape
sequences and control characters and applies NFC. It keeps invisible format characters (bidi
overrides, zero-width spaces, soft hyphens), which a TTS reads as noise or which reorder what a
reader sees, and inline HTML tags: those two are removed here.
"""
from __future__ import annotations

import re
import unicodedata

import ftfy

_FIXER = ftfy.TextFixerConfig(
    unescape_html=True,  # always: "auto" skips text that holds a '<', as "a < b &amp; c" does
    remove_terminal_escapes=True,
    fix_encoding=True,
    remove_control_chars=True,
    normalization="NFC",
    uncurl_quotes=False,
    explain=False,
)
# Inline formatting and line-break tags only: a prompt that shows other HTML is about HTML, and
# the code filter decides what happens to it.
_INLINE_TAG = re.compile(
    r"</?(?:b|i|u|em|strong|small|big|sub|sup|span|font|a|p|br|hr|div|mark|code|tt|s|strike|del|ins)"
    r"(?:\s[^<>]*)?/?>|<!--.*?-->",
    re.IGNORECASE | re.DOTALL,
)
_SPACES = re.compile(r"[^\S\n\t]+")  # tabs stay: the table filter reads them
_BLANK_LINES = re.compile(r"\n\s*\n+")


def clean_text(text: str) -> str:
    text = ftfy.fix_text(text, _FIXER)
    text = _INLINE_TAG.sub(" ", text)
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cs"))
    text = _BLANK_LINES.sub("\n", _SPACES.sub(" ", text))
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def has_speakable_text(text: str) -> bool:
    return any(c.isalnum() for c in text)
