"""Shard tasks of one stage run by worker processes of another Python interpreter.

A stage whose engine needs packages that cannot live beside the rest (CosyVoice pins its own
torch, onnxruntime and torchaudio) sets `python:` to the interpreter of its own virtual
environment. Each worker is a long-lived child (`pipeline.task_worker`), so models load once;
tasks and ledger records cross as JSON lines, and the child writes shards, errors and progress
files exactly as an in-process shard would. What the child prints goes to the run's log.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Iterator

from pipeline.errors import InfrastructureError, StageContractError
from pipeline.task import ShardTask

# Where this project's packages are found; the child appends it to its sys.path so that its own
# site-packages (the stage's engine and its pins) win over anything found there.
CODE_ROOT = str(Path(__file__).resolve().parents[2])
BOOT = ("import sys; sys.path.append(sys.argv[1]); "
        "from pipeline.task_worker import main; sys.exit(main())")


def task_to_json(task: ShardTask) -> str:
    return json.dumps({
        "stage": task.stage, "kind": task.kind, "settings": asdict(task.settings), "context": task.context,
        "index": task.index, "fingerprint": task.fingerprint, "input_fingerprints": task.input_fingerprints,
        "records": task.records, "inputs": task.inputs, "target": task.target,
    })


class WorkerProcess:
    def __init__(self, python: str):
        self.python = python
        # stderr is inherited: the run log (pipeline.console points fd 2 there).
        self.process = subprocess.Popen([python, "-c", BOOT, CODE_ROOT], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def run(self, task: ShardTask) -> dict:
        try:
            self.process.stdin.write(task_to_json(task) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            code = self.process.wait()
            raise InfrastructureError(
                f"stage {task.stage!r}: its worker interpreter {self.python} exited with code {code} "
                f"during shard {task.index} (see the run log)")
        reply = json.loads(line)
        if "record" in reply:
            return reply["record"]
        message = f"stage {task.stage!r} shard {task.index} (in {self.python}): {reply['message']}"
        if reply["infrastructure"]:
            raise InfrastructureError(message)
        if reply["error"] == StageContractError.__name__:
            raise StageContractError(message)
        raise RuntimeError(message)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # the child's loop ends at end of input
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class InterpreterExecutor:
    def __init__(self, python: str):
        self.python = python
        self.idle: queue.SimpleQueue[WorkerProcess | None] = queue.SimpleQueue()
        self.started: list[WorkerProcess] = []

    def run(self, task: ShardTask) -> dict:
        worker = self.idle.get()
        try:
            if worker is None:
                worker = WorkerProcess(self.python)
                self.started.append(worker)
            return worker.run(task)
        finally:
            self.idle.put(worker)

    def map(self, tasks: Iterable[ShardTask], workers: int) -> Iterator[dict]:
        for _ in range(workers):
            self.idle.put(None)  # a worker starts on its first task
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="interpreter") as pool:
            running: set[Future] = set()
            for task in tasks:
                running.add(pool.submit(self.run, task))
                if len(running) >= 2 * workers:  # bound what is held in memory, as joblib's pre_dispatch
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)

    def close(self) -> None:
        for worker in self.started:
            worker.close()
        self.started.clear()


def check_interpreter(stage: str, python: str) -> str | None:
    """One line saying what is wrong with a stage's `python:` setting, or None."""
    if not os.access(python, os.X_OK) or Path(python).is_dir():
        return f"stages.{stage}.python: {python} is not an executable Python interpreter"
    return None
