"""Failure kinds the engine distinguishes: item failures are data, the rest stop the run."""
from __future__ import annotations

import errno
from dataclasses import dataclass


@dataclass(frozen=True)
class ItemFailure:
    """One input row that a stage could not turn into an output row; goes to the errors ledger."""

    id: str
    reason: str  # short, stable, machine-groupable: "empty_text", "parse_failed", ...
    detail: str = ""  # what a person needs to act on: the offending text, the measured value


class InfrastructureError(RuntimeError):
    """The run cannot go on (model will not load, out of memory, disk full, server down)."""


class ConfigError(ValueError):
    """The configuration is wrong; raised before any work starts."""


class MissingModelError(ConfigError):
    """A model file or pin that only the user can supply is not there yet (the message says how)."""


class StageContractError(RuntimeError):
    """A stage broke the contract (lost a row, wrong schema): a bug, never data."""


_INFRA_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOMEM}


def is_infrastructure(exc: BaseException) -> bool:
    """True for exceptions no retry of a single item can fix."""
    if isinstance(exc, (InfrastructureError, MemoryError, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _INFRA_ERRNOS:
        return True
    name = type(exc).__name__
    # By name, so the engine need not import vLLM, joblib or openai: a dead engine process
    # (EngineDeadError, a killed worker) fails every later item too.
    return name in {"OutOfMemoryError", "APIConnectionError", "EngineDeadError", "TerminatedWorkerError",
                    "BrokenProcessPool"}
