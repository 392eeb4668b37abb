"""In-process for workers=1; a joblib (loky) process pool for workers>1."""
from __future__ import annotations

from typing import Iterable, Iterator

from pipeline.task import ShardTask, run_shard


class LocalExecutor:
    def map(self, tasks: Iterable[ShardTask], workers: int) -> Iterator[dict]:
        if workers <= 1:
            for task in tasks:
                yield run_shard(task)
            return
        from joblib import Parallel, delayed

        # loky keeps its workers alive between calls, so each loads its models once;
        # pre_dispatch bounds how many tasks (and source chunks) are held in memory.
        parallel = Parallel(
            n_jobs=workers, backend="loky", return_as="generator_unordered", pre_dispatch="2*n_jobs"
        )
        yield from parallel(delayed(run_shard)(task) for task in tasks)

    def close(self) -> None:
        pass
