"""The default text-for-speech normalizer against the hand-written reading table, case by case;
the NeMo-based normalizers (the optional `nemo` extra) are scored on a per-class sample of it
where NeMo is installed (it is slow: ~10 cases/s/core, and compiles its grammars once, ~35 s-3 min;
`make bench` scores all three on the whole table).

NeMo's compiled grammars and the readings are cached under pytest's temporary root, which
outlives a session, so only the first run compiles the grammars."""
from __future__ import annotations

from pathlib import Path

import pytest

from stages.text.normalizers import DEFAULT, NAMES, get_normalizer
from stages.text.readings import load_cases, score
from stages.text.validate import leftover_unreadable

TABLE = Path(__file__).with_name("normalizer_cases.tsv")
CASES = load_cases(TABLE)
SAMPLE_PER_CLASS = 2


@pytest.fixture(scope="session")
def normalizer_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp().parent / "normalizer-cache"


@pytest.fixture(scope="session")
def default_normalizer(normalizer_cache):
    return get_normalizer(DEFAULT, normalizer_cache, results_dir=normalizer_cache)


def test_table_covers_every_class_with_enough_cases():
    classes = {case.kind for case in CASES}
    assert len(CASES) >= 400
    assert classes == {"cardinal", "ordinal", "decimal", "fraction", "money", "measure", "date", "time",
                       "telephone", "url", "roman", "abbreviation", "version", "scale", "decade", "symbol",
                       "html", "markdown", "code"}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}:{c.text[:40]}" for c in CASES])
def test_default_reads_case(case, default_normalizer):
    spoken = default_normalizer(case.text)
    assert case.reads_right(spoken), f"read {spoken!r}, expected one of {case.readings}"
    assert leftover_unreadable(spoken) is None, spoken


def _sample():
    seen: dict[str, int] = {}
    picked = []
    for case in CASES:
        if seen.get(case.kind, 0) < SAMPLE_PER_CLASS:
            seen[case.kind] = seen.get(case.kind, 0) + 1
            picked.append(case)
    return picked


def test_other_normalizers_are_scored_and_default_is_best(normalizer_cache):
    pytest.importorskip("nemo_text_processing", reason="the optional nemo extra is not installed")
    sample = _sample()
    scores = {name: score(get_normalizer(name, normalizer_cache, results_dir=normalizer_cache), sample)
              for name in NAMES}
    for name, result in scores.items():
        print(f"{name}: {result.right}/{result.total} ({result.share:.0%}); "
              f"failures by class: {dict(result.failures_by_class())}")
        assert result.total == len(sample) and 0 < result.right <= result.total
    assert scores[DEFAULT].share == max(result.share for result in scores.values())
    assert score(get_normalizer(DEFAULT, normalizer_cache), CASES).share >= 0.98
