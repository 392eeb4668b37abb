"""The child side of pipeline.executors.interpreter: reads shard tasks as JSON lines on stdin,
runs each with pipeline.task.run_shard, and answers one JSON line per task on stdout."""
from __future__ import annotations

import json
import logging
import os
import sys
import traceback

from pipeline.config import settings_from_dict
from pipeline.errors import is_infrastructure
from pipeline.task import ShardTask, run_shard


def task_from_json(line: str) -> ShardTask:
    data = json.loads(line)
    data["settings"] = settings_from_dict(data.get("target") or data["kind"], data["settings"], f"stages.{data['stage']}")
    return ShardTask(**data)


def main() -> int:
    # Engines print; only replies may reach the parent's pipe, so fd 1 becomes the log (fd 2).
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s [worker {os.getpid()}] %(name)s: %(message)s")
    for line in sys.stdin:
        try:
            reply = {"record": run_shard(task_from_json(line))}
        except Exception as exc:
            logging.getLogger(__name__).error("shard task failed:\n%s", traceback.format_exc())
            reply = {"error": type(exc).__name__, "infrastructure": is_infrastructure(exc),
                     "message": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0
