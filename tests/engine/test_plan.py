"""The dry-run plan: done / stale / to-run shards per stage, the changed settings named, and
time estimates from this data_root's ledger or from a table of measured rates."""
import dataclasses
import json
import shutil

import pytest
from engine_run import build, engine_config

from pipeline.plan import format_plan, plan, remaining_seconds
from pipeline.shards import Layout
from pipeline.testing import GeneratedSource

ITEMS = 500  # 5 shards of 100


def stages(suffix1="", suffix2="", preparing=False):
    chain = {
        "source": {"kind": "generated", "items": ITEMS},
        "pass1": {"kind": "passthrough", "upstream": "source", "suffix": suffix1},
        "pass2": {"kind": "passthrough", "upstream": "pass1", "suffix": suffix2},
    }
    if preparing:
        chain["fit"] = {"kind": "preparing_stage:PreparingStage", "upstream": "pass1"}
    return chain


@pytest.fixture(scope="module")
def built_once(tmp_path_factory):
    root = tmp_path_factory.mktemp("built")
    build(root, stages=stages(preparing=True))
    return root


@pytest.fixture
def built(built_once, tmp_path):
    """A copy of one build, for each test to change."""
    shutil.copytree(built_once, tmp_path / "root")
    return tmp_path / "root"


def counts(result) -> dict[str, tuple]:
    return {s.stage: (s.done, s.stale, s.new) for s in result.stages}


def test_empty_root_plans_every_shard_to_run(tmp_path):
    result = plan(engine_config(tmp_path, stages=stages()), table={})
    assert counts(result) == {"source": (0, 0, 5), "pass1": (0, 0, 5), "pass2": (0, 0, 5)}
    assert [s.items_to_run for s in result.stages] == [ITEMS, ITEMS, ITEMS]
    assert result.total_s is None  # no rate: this root never ran them and the table has none
    assert not (tmp_path / "manifests").exists(), "a plan writes nothing"


def test_after_a_build_nothing_is_left(built):
    result = plan(engine_config(built, stages=stages(preparing=True)), table={})
    assert counts(result) == {"source": (5, 0, 0), "pass1": (5, 0, 0), "pass2": (5, 0, 0), "fit": (5, 0, 0)}
    assert result.total_s == 0 and result.changes == []


def test_a_slice_plans_only_its_own_shards(built):
    """stages.shards=[1,3] (one job of a Slurm array): the other slices' shards are left as they are."""
    run = engine_config(built, stages=stages(suffix2="!"))
    result = plan(dataclasses.replace(run, shards=(1, 3)), table={})
    assert counts(result) == {"source": (5, 0, 0), "pass1": (5, 0, 0), "pass2": (3, 2, 0)}


def test_one_changed_setting_stales_exactly_that_stage_and_its_dependants(built):
    result = plan(engine_config(built, stages=stages(suffix2="!", preparing=True)), table={})
    assert counts(result) == {"source": (5, 0, 0), "pass1": (5, 0, 0), "pass2": (0, 5, 0), "fit": (5, 0, 0)}
    assert result.changes == ["stages.pass2.suffix: '' -> !"]

    result = plan(engine_config(built, stages=stages(suffix1="?", preparing=True)), table={})
    assert counts(result) == {"source": (5, 0, 0), "pass1": (0, 5, 0), "pass2": (0, 5, 0), "fit": (0, 5, 0)}
    assert result.changes == ["stages.pass1.suffix: '' -> ?"]
    text = format_plan(result)
    assert "stages.pass1.suffix: '' -> ?" in text
    header = next(line for line in text.splitlines() if line.startswith("stage"))
    positions = [header.index(c) for c in ("stage", "shards done", "stale", "to run", "estimated time")]
    assert positions == sorted(positions)


def test_a_lost_shard_reruns_alone_unless_a_prepare_reads_it(built):
    layout = Layout(built)
    layout.shard("pass1", 2).unlink()
    layout.shard_record("pass1", 2).unlink()
    result = plan(engine_config(built, stages=stages(preparing=True)), table={})
    # pass1's shard 2 comes back with the same fingerprint: pass2's shard 2 stays done, but the
    # stage whose prepare() reads every input shard cannot be known unchanged.
    assert counts(result) == {"source": (5, 0, 0), "pass1": (4, 0, 1), "pass2": (5, 0, 0), "fit": (0, 5, 0)}
    assert result.changes == []


def test_a_source_that_is_not_read_keeps_its_done_shards(built, monkeypatch):
    monkeypatch.setattr(GeneratedSource, "reads_locally", lambda self: False)
    result = plan(engine_config(built, stages=stages(preparing=True)), table={})
    assert counts(result)["source"] == (5, 0, 0)
    assert any("source not read" in n for n in result.notes)
    monkeypatch.setattr(GeneratedSource, "expected_records", lambda self: None)
    result = plan(engine_config(built, stages=stages(preparing=True)), table={})
    assert result.stages[0].new is None and result.total_s is None


def ledger_estimate(root, stage, items):
    records = [json.loads(p.read_text()) for p in sorted((root / "manifests" / stage).glob("shard-*.json"))]
    summary = json.loads((root / "manifests" / stage / "stage.json").read_text())
    per_item = sum(r["elapsed_s"] - r["setup_s"] for r in records) / sum(r["rows_in"] for r in records)
    fixed = max(r["setup_s"] for r in records) + summary["prepare_s"] + summary["finalize_s"]
    return fixed + per_item * items


def test_estimates_come_from_the_ledger_rates(built):
    result = plan(engine_config(built, stages=stages(suffix1="?", preparing=True)), table={})
    by_stage = {s.stage: s for s in result.stages}
    for stage in ("pass1", "pass2", "fit"):
        assert by_stage[stage].basis.startswith("ledger:")
        assert by_stage[stage].estimate_s == pytest.approx(ledger_estimate(built, stage, ITEMS))
    assert by_stage["fit"].estimate_s >= 0.3  # its prepare() counts
    assert result.total_s == pytest.approx(sum(s.estimate_s for s in result.stages))
    assert remaining_seconds(engine_config(built, stages=stages(suffix1="?", preparing=True))) == {
        s.stage: pytest.approx(s.estimate_s) for s in result.stages}


def test_estimates_for_stages_never_run_here_come_from_the_table(tmp_path):
    table = {"rows": [
        {"stage_kind": "generated", "rate": 0.001, "unit": "s/item", "fixed_s": 1.0},
        {"stage_kind": "passthrough", "rate": 0.5, "unit": "s/item", "fixed_s": 2.0, "match": {"suffix": ""}},
        {"stage_kind": "passthrough", "rate": 9.0, "unit": "s/item", "fixed_s": 9.0, "match": {"suffix": "x"}},
    ]}
    result = plan(engine_config(tmp_path, stages=stages()), table=table)
    assert [s.estimate_s for s in result.stages] == pytest.approx([1.5, 252.0, 252.0])
    assert all(s.basis.startswith("table:") for s in result.stages)
    assert "total" in format_plan(result) and result.total_s == pytest.approx(505.5)
    # A setting no row matches: no estimate rather than another engine's rate.
    result = plan(engine_config(tmp_path, stages=stages(suffix2="y")), table=table)
    assert result.stages[2].estimate_s is None and result.total_s is None
