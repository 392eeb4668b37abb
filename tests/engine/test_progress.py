"""Progress in items: running shards report through files that the main process reads."""
import logging
import subprocess
import sys
import time

from engine_run import build

from pipeline.progress import StageProgress, build_eta
from pipeline.shard_progress import progress_file, read_progress, reporting
from pipeline.task import process_isolating_failures
from pipeline.testing import PassthroughSettings, PassthroughStage

WORKER = """
import sys
from pipeline.shard_progress import advance, counted, reporting
with reporting(sys.argv[1], 10):
    for _ in counted(range(3)):
        pass
    advance(1)
"""


def record(index: int, rows: int, errors: int = 0) -> dict:
    return {"shard": index, "rows_in": rows, "errors": errors}


def test_a_running_shard_in_another_process_moves_the_count(tmp_path):
    progress = StageProgress("speak", {0: 10, 1: 10}, enabled=False, log_dir=tmp_path)
    try:
        progress.dispatched(0)
        path = progress_file(tmp_path, "speak", 0)
        subprocess.run([sys.executable, "-c", WORKER, str(path)], check=True, timeout=60)
        assert read_progress(path) == (4, 10)
        progress.poll()
        assert progress.items_done == 4
        assert progress.eta_s() is not None  # a rate exists: 16 items left at it
        progress.done(record(0, 10, errors=2))
        assert progress.items_done == 10 and progress.errors == 2
        assert not path.exists()
    finally:
        progress.close()


def test_skipped_shards_count_as_done_and_a_join_corrects_the_total(tmp_path):
    progress = StageProgress("verify", {0: 10, 1: 10}, enabled=False, log_dir=tmp_path)
    try:
        progress.skip(0, 8)  # two rows were dropped by the join
        assert (progress.items_done, progress.total_items) == (8, 18)
        assert progress.work_done() == 0 and progress.eta_s() is None  # no rate and no estimate
    finally:
        progress.close()


def test_the_build_eta_adds_the_estimates_of_later_stages():
    assert build_eta(30.0, {"b": 60.0, "c": 10.0}) == 100.0
    assert build_eta(30.0, {}) == 30.0
    assert build_eta(30.0, {"b": None}) is None
    assert build_eta(None, {"b": 60.0}) is None
    progress = StageProgress("a", {0: 5}, enabled=False, estimate_s=120.0, later_estimates={"b": 60.0})
    try:
        assert 170 < progress.build_eta_s() <= 180  # nothing reported yet: the planned 120 s
    finally:
        progress.close()


def test_a_retried_batch_is_counted_once(tmp_path):
    stage = PassthroughStage("pass1", PassthroughSettings(raise_on="3"), {})
    rows = [{"id": f"item-{i}", "text": "t"} for i in range(5)]
    path = progress_file(tmp_path, "pass1", 0)
    with reporting(path, len(rows)):
        results = process_isolating_failures(stage, rows)
    assert len(results) == 5 and read_progress(path) == (5, 5)


def test_without_bars_a_progress_line_reaches_the_log(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    progress = StageProgress("rewrite", {0: 30}, enabled=False, log_dir=tmp_path, log_every_s=0)
    try:
        progress.dispatched(0)
        time.sleep(1.5)
    finally:
        progress.close()
    (line, *_) = [r for r in caplog.records if r.name == "pipeline.progress"]
    assert line.getMessage().startswith("stage rewrite: 0/30 items")
    assert line.console is True  # no bar: the console shows the line too


def test_a_build_shows_items_on_its_bar_and_leaves_no_progress_files(tmp_path, capsys):
    build(tmp_path, items=250, shard_size=100, progress=True)
    bars = capsys.readouterr().err
    assert "250/250 items" in bars and "shards 3/3" in bars
    build(tmp_path, items=250, shard_size=100, progress=True)  # all done: skipped shards count
    assert "250/250 items" in capsys.readouterr().err
    assert not (tmp_path / "logs" / "progress").exists()
