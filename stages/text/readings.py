"""A table of written forms and how they should be read aloud, and how well a normalizer reads it.

The table (tests/text/normalizer_cases.tsv) has three tab-separated columns: class, input,
expected reading. ``\\n`` in an input stands for a line break; an expected cell may list several
acceptable readings separated by `` || ``. A reading matches when it equals one of them in
:func:`canonical` form, so case, punctuation, hyphens and spacing never decide a case.
"""
from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ALTERNATIVES = " || "


@dataclass(frozen=True)
class Case:
    kind: str  # the semiotic class: cardinal, money, roman, ...
    text: str
    readings: tuple[str, ...]

    def reads_right(self, spoken: str) -> bool:
        return canonical(spoken) in {canonical(r) for r in self.readings}


def canonical(text: str) -> str:
    """Lower-case letters and digits only: the light form readings are compared in."""
    return "".join(c for c in text.casefold() if c.isalnum())


def load_cases(path: str | Path) -> list[Case]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, body = rows[0], rows[1:]
    if header != ["class", "input", "expected"]:
        raise ValueError(f"{path}: header must be class, input, expected; found {header}")
    cases = []
    for line, row in enumerate(body, start=2):
        if len(row) != 3:
            raise ValueError(f"{path}:{line}: expected 3 tab-separated columns, found {len(row)}")
        kind, text, expected = row
        cases.append(Case(kind, text.replace("\\n", "\n"), tuple(expected.split(ALTERNATIVES))))
    return cases


@dataclass(frozen=True)
class Score:
    right: int
    total: int
    failures: tuple[tuple[Case, str], ...]  # (case, what was read instead)

    @property
    def share(self) -> float:
        return self.right / self.total if self.total else 0.0

    def failures_by_class(self) -> Counter[str]:
        return Counter(case.kind for case, _ in self.failures)


def score(normalize: Callable[[str], str], cases: Iterable[Case]) -> Score:
    cases = list(cases)
    failures = []
    for case in cases:
        spoken = normalize(case.text)
        if not case.reads_right(spoken):
            failures.append((case, spoken))
    return Score(len(cases) - len(failures), len(cases), tuple(failures))
