"""A passthrough with its own prepare(): a digest of all its input shards (as a k-means fit reads
a sample of them), so a plan must treat a change to any input shard as a change to every shard."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

from pipeline.testing import PassthroughStage

PREPARE_SECONDS = 0.3


class PreparingStage(PassthroughStage):
    def prepare(self, input_shards):
        time.sleep(PREPARE_SECONDS)  # stands for a model fit: status and rates must count it
        h = hashlib.sha256()
        for path in input_shards[self.settings.upstream]:
            h.update(Path(path).read_bytes())
        return {"inputs": h.hexdigest()}
