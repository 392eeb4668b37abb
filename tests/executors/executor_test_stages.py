"""A passthrough stage that can stop mid-shard, so a test can kill its Ray worker there.

Importing this module registers the kind `stalling_passthrough`: in the test process, and in a
Ray worker when it unpickles a task whose settings are `StallingSettings` (the workers find this
folder on their PYTHONPATH). Its output is the passthrough stage's.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipeline.testing import PassthroughSettings, PassthroughStage

KIND = "executor_test_stages:StallingPassthrough"  # a class path works as a kind without registering it


@dataclass
class StallingSettings(PassthroughSettings):
    signal_dir: str = ""  # where the stage reports its pid and looks for the `released` file
    stall_on: str = ""  # id of the item whose shard stalls (until `released` exists)
    die_on: str = ""  # id of the item whose shard kills its own worker, on every attempt


class StallingPassthrough(PassthroughStage):
    Settings: ClassVar = StallingSettings

    def process(self, rows):
        ids = {r["id"] for r in rows}
        signals = Path(self.settings.signal_dir)
        if self.settings.die_on in ids:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.settings.stall_on in ids:
            with open(signals / "attempts", "a") as f:
                f.write(f"{os.getpid()}\n")
            deadline = time.time() + 120
            while not (signals / "released").exists():
                if time.time() > deadline:
                    raise TimeoutError("nobody killed or released this worker")
                time.sleep(0.05)
        return super().process(rows)
