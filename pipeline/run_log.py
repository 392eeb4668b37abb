"""One log file per run; the console shows only what the pipeline itself has to say."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from tqdm import tqdm

from pipeline.console import console
from pipeline.registry import own_packages

# Loggers of the engine and of the packages its registered stage kinds live in (own_packages());
# any other logger (a model library, a worker pool) is engine output.
OWN_LOGGERS = frozenset({"pipeline", "__main__"})


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


class ConsoleFilter(logging.Filter):
    """Our records at the console level; an engine's only from ERROR up unless verbose. A record
    logged with extra={"console": False} (a progress line the bar already shows) stays in the log."""

    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "console", True):
            return False
        own = record.name == "root" or record.name.split(".", 1)[0] in OWN_LOGGERS | own_packages()
        return own or self.verbose or record.levelno >= logging.ERROR


class ConsoleHandler(logging.StreamHandler):
    """Writes to the terminal, clearing progress bars first so a message never lands inside one."""

    def __init__(self):
        super().__init__(console.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        with tqdm.external_write_mode(file=console.stderr):
            super().emit(record)


def setup_logging(log_dir: Path, level: str = "INFO", debug: bool = False, verbose: bool = False) -> Path:
    """Log everything (DEBUG) to a new file under `log_dir`; the console gets our records at `level`.
    Unless `verbose`, engine output (everything written to fds 1 and 2, by us, libraries or child
    processes) goes to that file too; `console.stdout`/`console.stderr` still reach the terminal."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"  # slices may start together
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    file_handler.setLevel(logging.DEBUG)
    terminal = ConsoleHandler()
    terminal.setFormatter(ConsoleFormatter(debug))
    terminal.setLevel(level.upper())
    terminal.addFilter(ConsoleFilter(verbose))
    root.addHandler(file_handler)
    root.addHandler(terminal)
    if verbose:
        console.restore()
    else:
        console.send_engine_output_to(path)
    return path
