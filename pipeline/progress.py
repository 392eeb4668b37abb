"""A stage's progress in items, with its ETA and the build's, on a bar and as a line in the log.

Finished shards report through the executor (their ledger records); running shards through small
files that the task keeps up to date (pipeline.shard_progress), read here every POLL_S by a thread.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from tqdm import tqdm

from pipeline.console import console
from pipeline.shard_progress import progress_file, read_progress

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often running shards' progress files are read and the bar redrawn
LOG_EVERY_S = 30.0  # default gap between two progress lines in the run's log
RATE_WINDOW_S = 2.0  # items/s is measured from the first report on, once this much time has passed
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} items [{elapsed}{postfix}]"
COUNT_FORMAT = "{desc}: {n_fmt} items [{elapsed}{postfix}]"


def duration(seconds: float | None) -> str:
    return "?" if seconds is None else tqdm.format_interval(max(0.0, seconds))


def build_eta(stage_eta_s: float | None, later_estimates: Mapping[str, float | None]) -> float | None:
    """This stage's ETA plus the estimates of the stages after it; None while any is unknown."""
    if stage_eta_s is None or any(v is None for v in later_estimates.values()):
        return None
    return stage_eta_s + sum(later_estimates.values())  # type: ignore[arg-type]


class StageProgress:
    """`shard_items`: index -> expected items of each shard this run covers (None: not known in
    advance, as for a source); `estimate_s`: a planned duration for this stage, the ETA until items
    give a rate; `later_estimates`: stage -> planned seconds of the stages still to run after it
    (pipeline.plan.remaining_seconds); `log_dir`: where running shards' progress files are."""

    def __init__(self, stage: str, shard_items: Mapping[int, int] | None, *, enabled: bool = True,
                 log_dir: Path | None = None, estimate_s: float | None = None,
                 later_estimates: Mapping[str, float | None] | None = None, log_every_s: float = LOG_EVERY_S):
        self.stage = stage
        self.expected = dict(shard_items) if shard_items is not None else None
        self.total_items = sum(self.expected.values()) if self.expected is not None else None
        self.total_shards = len(self.expected) if self.expected is not None else None
        self.log_dir = log_dir
        self.estimate_s = estimate_s
        self.later = dict(later_estimates or {})
        self.log_every_s = log_every_s
        self.enabled = enabled
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.logged_at = self.started
        self.skipped_items = self.skipped_shards = 0
        self.finished_items = self.finished_shards = 0
        self.errors = 0
        self.running: dict[int, int] = {}  # shard index -> items done, from its progress file
        self.first_report: tuple[float, int] | None = None  # (when, items of this run) at the first report
        self.bar = tqdm(total=self.total_items, desc=f"{stage:>18}", unit="item", disable=not enabled,
                        bar_format=BAR_FORMAT if self.total_items is not None else COUNT_FORMAT,
                        dynamic_ncols=True, file=console.stderr, mininterval=0.5)
        self.stop = threading.Event()
        self.watcher = threading.Thread(target=self.watch, name=f"progress-{stage}", daemon=True)
        self.watcher.start()

    # -- events from the runner ----------------------------------------------------------------
    def skip(self, index: int, rows: int) -> None:
        """A shard finished by an earlier run: its items count as done, but not toward the rate."""
        with self.lock:
            self.skipped_shards += 1
            self.skipped_items += rows
            self.correct_total(index, rows)
        self.show()

    def dispatched(self, index: int) -> None:
        """A task was handed to the executor; a progress file left by an interrupted run goes."""
        with self.lock:
            self.running[index] = 0
        if self.log_dir is not None:
            progress_file(self.log_dir, self.stage, index).unlink(missing_ok=True)

    def done(self, record: dict) -> None:
        index = record["shard"]
        with self.lock:
            self.running.pop(index, None)
            self.finished_shards += 1
            self.finished_items += record["rows_in"]
            self.errors += record["errors"]
            self.correct_total(index, record["rows_in"])
            self.note_first_report()
        if self.log_dir is not None:
            progress_file(self.log_dir, self.stage, index).unlink(missing_ok=True)
        self.show()

    def close(self) -> None:
        self.stop.set()
        self.watcher.join()
        self.show()
        self.bar.close()
        if self.log_dir is not None:
            for index in self.running:  # the run stopped with these shards unfinished
                progress_file(self.log_dir, self.stage, index).unlink(missing_ok=True)
            for folder in (self.log_dir / "progress" / self.stage, self.log_dir / "progress"):
                try:
                    folder.rmdir()
                except OSError:  # not empty: a concurrent slice (stages.shards) is still running
                    pass

    # -- the watcher thread --------------------------------------------------------------------
    def watch(self) -> None:
        while not self.stop.wait(POLL_S):
            self.poll()
            self.show()
            if time.monotonic() - self.logged_at >= self.log_every_s:
                self.log_line()

    def poll(self) -> None:
        if self.log_dir is None:
            return
        with self.lock:
            indices = list(self.running)
        for index in indices:
            found = read_progress(progress_file(self.log_dir, self.stage, index))
            if found is None:
                continue
            with self.lock:
                if index in self.running:  # not finished meanwhile
                    self.running[index] = found[0]
                    self.correct_total(index, found[1])
                    self.note_first_report()

    # -- numbers ---------------------------------------------------------------------------------
    def correct_total(self, index: int, items: int) -> None:
        """The expected count of a shard is its first input's; a join may keep fewer rows."""
        if self.expected is not None and index in self.expected and self.expected[index] != items:
            self.total_items += items - self.expected[index]  # type: ignore[operator]
            self.expected[index] = items

    def work_done(self) -> int:
        """Items done by this run (skipped shards left out)."""
        return self.finished_items + sum(self.running.values())

    def note_first_report(self) -> None:
        if self.first_report is None and self.work_done() > 0:
            self.first_report = (time.monotonic(), self.work_done())

    @property
    def items_done(self) -> int:
        with self.lock:
            return self.skipped_items + self.work_done()

    def rate(self) -> float | None:
        """Items per second; from the first report on (model loading left out) once there is a window."""
        now, work = time.monotonic(), self.work_done()
        if self.first_report is not None:
            since, at_first = self.first_report
            if now - since >= RATE_WINDOW_S and work > at_first:
                return (work - at_first) / (now - since)
        if work > 0:
            return work / max(now - self.started, 1e-9)
        return None

    def eta_s(self) -> float | None:
        with self.lock:
            if self.total_items is not None:
                remaining = self.total_items - self.skipped_items - self.work_done()
                if remaining <= 0:
                    return 0.0
                rate = self.rate()
                if rate is not None:
                    return remaining / rate
            left = None if self.estimate_s is None else self.estimate_s - (time.monotonic() - self.started)
            return left if left is not None and left > 0 else None  # past the estimate: unknown

    def build_eta_s(self) -> float | None:
        return build_eta(self.eta_s(), self.later)

    # -- output ----------------------------------------------------------------------------------
    def summary(self) -> str:
        with self.lock:
            shards = self.skipped_shards + self.finished_shards
            total_shards = "?" if self.total_shards is None else self.total_shards
            errors = self.errors
        if self.total_items is None:  # no ETA without a total: the rate instead
            with self.lock:
                rate = self.rate()
            parts = [f"{rate:.3g} items/s" if rate else "items/s ?"]
        else:
            parts = [f"eta {duration(self.eta_s())}"]
        if (whole := self.build_eta_s()) is not None and self.later:
            parts.append(f"build eta {duration(whole)}")
        parts += [f"shards {shards}/{total_shards}", f"errors {errors}"]
        return ", ".join(parts)

    def show(self) -> None:
        if not self.enabled:
            return
        text = self.summary()
        done = self.items_done
        with self.bar.get_lock():
            self.bar.total = self.total_items
            self.bar.n = done
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.refresh()

    def log_line(self) -> None:
        """Into the log always; on the console too when there is no bar to show it."""
        self.logged_at = time.monotonic()
        total = "?" if self.total_items is None else self.total_items
        log.info("stage %s: %d/%s items, %s elapsed, %s", self.stage, self.items_done, total,
                 duration(time.monotonic() - self.started), self.summary(), extra={"console": not self.enabled})
