"""Progress bar with ETA per stage, and one log file per run."""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm


class StageProgress:
    def __init__(self, stage: str, total_shards: int | None, enabled: bool = True):
        self.bar = tqdm(total=total_shards, desc=f"{stage:>18}", unit="shard", disable=not enabled,
                        dynamic_ncols=True, file=sys.stderr)
        self.items = 0
        self.errors = 0

    def skip(self) -> None:
        self.bar.update(1)

    def done(self, record: dict) -> None:
        self.items += record["rows"]
        self.errors += record["errors"]
        self.bar.set_postfix(items=self.items, errors=self.errors, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class ConsoleFormatter(logging.Formatter):
    """One line per message: tracebacks go to the log file (and here only when debugging)."""

    def __init__(self, debug: bool):
        super().__init__("%(levelname)s %(message)s")
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        if not self.debug:
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None,
                                            "stack_info": None})
        return super().format(record)


def setup_logging(log_dir: Path, level: str = "INFO", debug: bool = False) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    file_handler.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(ConsoleFormatter(debug))
    console.setLevel(level.upper())
    root.addHandler(file_handler)
    root.addHandler(console)
    return path
