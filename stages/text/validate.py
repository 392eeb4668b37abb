"""Pure checks on LLM-generated text that will be read aloud by a TTS.

Every check returns ``None`` when the text is fine, or a :class:`Problem`
with a reason a person can act on and the fragment that triggered it.
``is_probably_english`` is the one yes/no helper; ``not_english`` is the
check built on it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# What a TTS can read after normalization besides letters.
SPEAKABLE_PUNCTUATION = frozenset(" .,?!'\"-:;")

DEFAULT_WORDS_PER_MINUTE = 150.0

_CONTEXT_CHARS = 25


@dataclass(frozen=True)
class Problem:
    reason: str
    fragment: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.fragment!r}"


def _around(text: str, start: int, end: int) -> str:
    """The span text[start:end] with a little context on both sides."""
    left = max(0, start - _CONTEXT_CHARS)
    right = min(len(text), end + _CONTEXT_CHARS)
    return text[left:right].strip()


def _plain_apostrophes(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


def is_speakable_char(char: str) -> bool:
    """Latin letters (accents allowed) and the punctuation a TTS handles."""
    if char in SPEAKABLE_PUNCTUATION:
        return True
    return char.isalpha() and "LATIN" in unicodedata.name(char, "")


def leftover_unreadable(text: str) -> Problem | None:
    bad = [(i, c) for i, c in enumerate(text) if not is_speakable_char(c)]
    if not bad:
        return None
    kinds = sorted({c for _, c in bad})
    shown = " ".join(repr(c) for c in kinds[:10])
    first = bad[0][0]
    if any(c.isdigit() for c in kinds):
        advice = "spell numbers out in words (run normalize_for_speech)"
    else:
        advice = "rewrite or remove these characters"
    return Problem(
        f"{len(bad)} character(s) a TTS cannot read remain ({shown}); {advice}",
        _around(text, first, first + 1),
    )


_CANNOT = r"(?:can(?:'t|not)|won't|(?:am|'m) (?:unable|not able))"
_REFUSAL_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bas an ai\b(?: language model| assistant| model)?",
        rf"\bi(?:'m| am) (?:sorry|afraid),? (?:but )?i {_CANNOT}",
        r"\bi apologi[sz]e,? but\b",
        rf"\bi {_CANNOT}(?: to)? "
        r"(?:help|assist|provide|comply|fulfill|create|generate|answer|do that|write that|support)",
        r"\b(?:against|violates?) my (?:guidelines|programming|policies|policy|content policy)",
        r"\bi don't have (?:personal (?:opinions|feelings|experiences)|access to real-time)\b",
    )
]


def looks_like_refusal(text: str) -> Problem | None:
    plain = _plain_apostrophes(text)
    for pattern in _REFUSAL_PATTERNS:
        match = pattern.search(plain)
        if match:
            return Problem(
                "reads like a model refusal or AI disclaimer; regenerate the sample",
                _around(plain, match.start(), match.end()),
            )
    return None


_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def _words(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text))


def _tail_from_word(text: str, words: list[re.Match[str]], index: int) -> str:
    tail = text[words[index].start():]
    return tail if len(tail) <= 80 else tail[:77] + "..."


def too_many_words(text: str, limit: int) -> Problem | None:
    words = _words(text)
    if len(words) <= limit:
        return None
    extra = len(words) - limit
    return Problem(
        f"{len(words)} words, limit is {limit}; cut at least {extra} word(s)",
        _tail_from_word(text, words, limit),
    )


def speaking_seconds(text: str, words_per_minute: float = DEFAULT_WORDS_PER_MINUTE) -> float:
    """Rough speaking time: word count at a steady rate, pauses ignored."""
    return len(_words(text)) * 60.0 / words_per_minute


def too_long_to_speak(
    text: str,
    max_seconds: float,
    words_per_minute: float = DEFAULT_WORDS_PER_MINUTE,
) -> Problem | None:
    seconds = speaking_seconds(text, words_per_minute)
    if seconds <= max_seconds:
        return None
    words = _words(text)
    fits = int(max_seconds * words_per_minute / 60.0)
    return Problem(
        f"about {seconds:.1f} s to speak at {words_per_minute:g} words per minute, "
        f"max is {max_seconds:g} s; keep it to at most {fits} words",
        _tail_from_word(text, words, min(fits, len(words) - 1)),
    )


# Frequent English function words that are not also frequent words of the
# languages most often mixed into instruction data (so no "a", "in", "me", "so").
_ENGLISH_WORDS = frozenset(
    """
    about above after again all and any are as at be because been before being
    below between both but by can could did does doing down during each few for
    from further had has have having here hers him his how if into is it its
    itself more my nor not now of off once only or other our ours out own same
    she should some such than that the their them then there these they this
    those through to too until up very we were what when where which while who
    whom why with would you your yours
    """.split()
)
# Frequent Spanish, French, German, Italian, Portuguese and Dutch words that
# are not English words.
_FOREIGN_WORDS = frozenset(
    """
    el la los las del que y en un una es por para se lo su al como pero muy
    le les des est une du dans pas qui sur au avec ce cette sont je vous nous il elle
    der das und ist nicht mit ein eine zu ich sie wir auf von sich auch
    di che sono gli della nel em uma ao das het een niet ik dat
    """.split()
)

# Spelled-out numbers say nothing about the language; they are left out of the count.
_NUMBER_WORDS = frozenset(
    """
    zero one two three four five six seven eight nine ten eleven twelve thirteen
    fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty
    sixty seventy eighty ninety hundred thousand million billion trillion point minus
    first second third fourth fifth sixth seventh eighth ninth tenth oh
    """.split()
)

_MIN_ASCII_LETTER_SHARE = 0.9
_MIN_ENGLISH_WORD_SHARE = 0.12
# Below this many words the word shares say little.
_MIN_WORDS_FOR_WORD_TEST = 6


def _is_number_word(word: str) -> bool:
    return all(part in _NUMBER_WORDS for part in word.split("-"))


def _english_problem(text: str) -> Problem | None:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return Problem("contains no letters at all", text[:60])
    ascii_share = sum(c.isascii() for c in letters) / len(letters)
    if ascii_share < _MIN_ASCII_LETTER_SHARE:
        first = next(i for i, c in enumerate(text) if c.isalpha() and not c.isascii())
        return Problem(
            f"only {ascii_share:.0%} of letters are ASCII; text is probably not English",
            _around(text, first, first + 1),
        )
    words = [w.group().lower().replace("\u2019", "'") for w in _words(text)]
    words = [w for w in words if any(c.isalpha() for c in w) and not _is_number_word(w)]
    if len(words) < _MIN_WORDS_FOR_WORD_TEST:
        return None
    english = sum(w in _ENGLISH_WORDS for w in words)
    foreign = sum(w in _FOREIGN_WORDS for w in words)
    # A list with a few English glue words ("Sort the following: ...") is still English.
    if english / len(words) < _MIN_ENGLISH_WORD_SHARE and foreign >= english:
        return Problem(
            f"only {english} of {len(words)} words are common English function words "
            f"(and {foreign} are common words of other languages); "
            "text is probably not English, or is a bare list",
            text[:60],
        )
    return None


def is_probably_english(text: str) -> bool:
    """Cheap heuristic: mostly ASCII letters and enough English function words."""
    return _english_problem(text) is None


def not_english(text: str) -> Problem | None:
    """The check form of :func:`is_probably_english`."""
    return _english_problem(text)


_QUANTIFIER = r"(?:all |any |everything )?(?:of )?(?:the |your |my )?"
_EARLIER = r"previous|prior|above|earlier|preceding|former"
_INJECTION_PATTERNS = [
    re.compile(p, re.IGNORECASE | re.MULTILINE)
    for p in (
        rf"\bignore {_QUANTIFIER}(?:{_EARLIER})\b",
        rf"\bdisregard {_QUANTIFIER}(?:{_EARLIER}|instructions)\b",
        rf"\bforget {_QUANTIFIER}(?:(?:{_EARLIER}) )?(?:instructions|rules|you were told)\b",
        r"\byou are now (?:a |an |the |in |no longer|free|unrestricted|jailbroken|dan\b|going to|my )",
        r"\bsystem prompt\b",
        r"\b(?:new|updated|override) instructions\s*:",
        r"\b(?:developer|god|jailbreak) mode\b",
        r"\breveal (?:your|the) (?:instructions|prompt|rules)\b",
        r"<\|(?:im_start|im_end|system|endoftext)\|>",
        r"^\s*#{2,}\s*(?:system|instruction)\b",
    )
]


def looks_like_prompt_injection(text: str) -> Problem | None:
    for pattern in _INJECTION_PATTERNS:
        match = pattern.search(text)
        if match:
            return Problem(
                "contains prompt-injection wording that targets the model; drop or regenerate the sample",
                _around(text, match.start(), match.end()),
            )
    return None
