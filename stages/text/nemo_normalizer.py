"""NVIDIA NeMo's English text normalizer (weighted finite-state grammars), alone and as the middle of
a hybrid with our rules.

NeMo compiles its grammars once (about 35 s on one core) into ``.far`` files in a cache folder and
loads them in under a second after that; one instance per process and cache folder is kept.
It reads phone numbers, measures, dates and decades well and misreads HTML entities, markup,
code, URLs (read in full, character by character), scale suffixes ("100k"), Roman numerals in
names, version strings and some symbols ("AT&T", "<3"). The hybrid therefore runs our rules for
those first (:data:`stages.text.normalize.BEFORE_NEMO`), NeMo for the remaining semiotic classes,
and then our whole normalizer, which leaves NeMo's words alone and makes the result meet the
validator's speakable rules (digits, symbols and punctuation NeMo left).
"""
from __future__ import annotations

import logging
import re
import threading
from functools import cache
from pathlib import Path

from . import normalize as rules

_BUILD_LOCK = threading.Lock()
# Only sentences that still hold a digit or a symbol NeMo reads are worth its time.
_NEEDS_NEMO = re.compile(r"[\d$€£¥₹%&°@#/+=<>×÷]")
# NeMo writes British "one hundred and five"; the project reads "one hundred five".
_BRITISH_AND = re.compile(
    r"\b(hundred|thousand|million|billion|trillion) and (?=(?:one|two|three|four|five|six|seven|eight|nine|ten"
    r"|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty"
    r"|sixty|seventy|eighty|ninety)\b)"
)


def available() -> bool:
    """NeMo's normalizer is the optional `nemo` extra (pynini and its grammars are large)."""
    import importlib.util

    return importlib.util.find_spec("nemo_text_processing") is not None


def nemo_version() -> str:
    from importlib.metadata import version

    return f"nemo-text-processing {version('nemo-text-processing')}, pynini {version('pynini')}"


@cache
def _normalizer(grammar_dir: str):
    """The process-wide NeMo normalizer for a grammar cache folder, built on first use."""
    from filelock import FileLock
    from nemo_text_processing.text_normalization.normalize import Normalizer

    logging.getLogger("NeMo-text-processing").disabled = True  # logs every skipped symbol at INFO
    folder = Path(grammar_dir)
    folder.mkdir(parents=True, exist_ok=True)
    # Several worker processes may start at once: one compiles, the others then load.
    with _BUILD_LOCK, FileLock(str(folder / ".build.lock")):
        return Normalizer(input_case="cased", lang="en", cache_dir=str(folder), overwrite_cache=False)


def grammar_folder(cache_dir: str | Path) -> Path:
    """Where the compiled grammars live under a model cache: one folder per NeMo/pynini version."""
    version = re.sub(r"[^\w.]+", "-", nemo_version()).strip("-")
    return Path(cache_dir) / "nemo-text-normalization" / version


def nemo_normalize(text: str, cache_dir: str | Path) -> str:
    """NeMo alone, on the text as written (its own punctuation post-processing on)."""
    normalizer = _normalizer(str(grammar_folder(cache_dir)))
    lines = [line for line in text.split("\n") if line.strip()]
    return " ".join(normalizer.normalize(line, punct_post_process=True) for line in lines)


def _nemo_sentences(text: str, cache_dir: str | Path) -> str:
    normalizer = _normalizer(str(grammar_folder(cache_dir)))
    out = []
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", text):
        if _NEEDS_NEMO.search(sentence):
            sentence = normalizer.normalize(sentence, punct_post_process=True)
            sentence = _BRITISH_AND.sub(r"\1 ", sentence)
        out.append(sentence)
    return " ".join(out)


def hybrid_normalize(text: str, cache_dir: str | Path) -> str:
    """Our rules for markup and the forms NeMo misreads, NeMo for the rest, our rules to finish."""
    for step in rules.BEFORE_NEMO:
        text = step(text)
    return rules.normalize_for_speech(_nemo_sentences(text, cache_dir))
