"""The stage contract: records in -> records out. The engine owns everything else."""
from __future__ import annotations

from collections import Counter
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Iterator, Optional

import pyarrow as pa

from pipeline.errors import ItemFailure


@dataclass
class StageSettings:
    """Settings every stage has. Subclasses add their own fields (values live in conf/)."""

    kind: str = "?"  # which Stage class runs this node (see pipeline.registry)
    workers: int = 1  # processes for this stage (local executor); 1 = in-process
    fault_fraction: float = 0.0  # testing: the engine raises on this share of items, chosen by id hash
    python: Optional[str] = None  # interpreter of another virtual environment to run this stage's shards in

    def inactive_fields(self) -> frozenset[str]:
        """Fields left out of the fingerprint for these values: OMIT_WHEN_DEFAULT at their default,
        plus what a subclass knows has no effect (a group of settings for an engine not chosen)."""
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}
        return frozenset(n for n in self.OMIT_WHEN_DEFAULT if n in defaults and getattr(self, n) == defaults[n])

    def __post_init__(self):
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if not 0.0 <= self.fault_fraction <= 1.0:
            raise ValueError(f"fault_fraction must be between 0 and 1, got {self.fault_fraction}")

    # Fields that change speed, never output: left out of the fingerprint.
    RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset({"workers", "python"})
    # Fields added after builds existed: at their (scalar) default they are left out of the
    # fingerprint, so those builds' shards stay done and byte-identical.
    OMIT_WHEN_DEFAULT: ClassVar[frozenset[str]] = frozenset()


class Stage:
    """Subclass, declare `Settings`, `version`, and implement the four methods below.

    `process(rows)` gets the rows of one shard (in order, already joined across the declared
    inputs on `id`) and returns, for each input row, either an output dict (with the same
    `id`) or an `ItemFailure`. Raising means "the batch failed": the engine then retries item
    by item to find the culprit, unless the exception is an infrastructure failure.
    """

    Settings: ClassVar[type[StageSettings]] = StageSettings
    version: ClassVar[str] = "1"  # bump when a code change alters output for the same input
    # False: process() may return any number of rows and failures with ids of its choosing (a
    # stage that expands an item into several rows, or groups several rows into one).
    one_row_per_input: ClassVar[bool] = True

    def __init__(self, name: str, settings: StageSettings, context: dict[str, Any]):
        self.name = name
        self.settings = settings
        self.context = context  # run-wide values: data_root, seed, cache dirs
        self.metrics: Counter[str] = Counter()
        self.shard_fingerprint = ""  # of the shard being processed, set by the engine (lineage)
        # Every stage this one reads from, directly or further up, in graph order -> its engine
        # versions from the ledger. Set by the engine before prepare() and finalize().
        self.lineage: dict[str, dict[str, str]] = {}

    # -- declared by subclasses -----------------------------------------------------------
    def input_columns(self) -> dict[str, list[str] | dict[str, str]]:
        """Upstream stage name -> columns read from it (besides `id`): a list, or a mapping
        {column: name in the joined row} where two inputs have columns of the same name."""
        return {}

    def output_schema(self) -> pa.Schema:
        raise NotImplementedError

    def setup(self) -> None:
        """Load models; called once per worker before the first shard."""

    def process(self, rows: list[dict]) -> list[dict | ItemFailure]:
        raise NotImplementedError

    def engine_versions(self) -> dict[str, str]:
        """Versions of the engines and models this stage uses, for the ledger."""
        return {}

    def check(self) -> None:
        """Optional, before the run claims its data_root: what settings alone cannot show (a
        source file exists and is readable). Raise ConfigError with one line."""

    def prepare(self, input_shards: dict[str, list[str]]) -> dict[str, Any]:
        """Optional, once per run in the main process before any shard task (e.g. fit k-means
        on a sample of all shards). Returns JSON-able values that reach every worker as
        `self.context["prepared"]` and become part of every shard's fingerprint."""
        return {}

    def finalize(self, shard_paths: list[str]) -> None:
        """Optional, once after all of this stage's shards exist (e.g. write a dataset card).
        Must be idempotent: it runs again on every build."""

    def isolation_groups(self, rows: list[dict]) -> list[list[dict]]:
        """Where a batch raised, the engine retries these groups one by one to find the culprit:
        single rows by default; a grouping stage keeps the rows of one output together."""
        return [[row] for row in rows]

    # -- helpers ---------------------------------------------------------------------------
    def fail(self, item_id: str, reason: str, detail: Any = "") -> ItemFailure:
        # backslashreplace: a detail quoting bad text (a lone surrogate) must still be storable
        text = str(detail)[:2000].encode("utf-8", "backslashreplace").decode("utf-8")
        return ItemFailure(id=item_id, reason=reason, detail=text)

    def count(self, metric: str, n: int = 1) -> None:
        """Per-shard counters (cache hits, retries...) recorded in the shard's ledger entry."""
        self.metrics[metric] += n


class SourceStage(Stage):
    """The first stage: reads records from outside; the engine cuts them into fixed shards."""

    def read(self) -> Iterator[dict]:
        """Yield raw records, each a dict with a string `id`, in a deterministic order."""
        raise NotImplementedError

    def source_identity(self) -> dict[str, Any]:
        """What identifies the outside data (file hash, dataset revision) for fingerprints."""
        return {}

    def reads_locally(self) -> bool:
        """True when read() touches local files only: a dry-run plan may then read it to count and
        compare shards. The default, False, keeps a plan from ever downloading."""
        return False

    def expected_records(self) -> int | None:
        """How many records read() yields, where known without reading (a cap, a published size):
        a plan's count for a source it does not read. None: unknown."""
        return None
