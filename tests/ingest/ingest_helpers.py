"""Run the ingest stage alone into a data_root and read back what it kept and what it ledgered."""
import json

import pyarrow.parquet as pq

from pipeline.cli import load_config
from pipeline.ledger import errors_table
from pipeline.runner import Runner
from pipeline.shards import Layout


def ingest(data_root, *overrides):
    run = load_config([f"data_root={data_root}", "stages.only=[ingest]", "progress=false", *overrides])
    Runner(run).build()
    layout = Layout(data_root)
    rows = [r for p in sorted(layout.shard("ingest", 0).parent.glob("shard-*.parquet"))
            for r in pq.read_table(p).to_pylist()]
    errors = {e["id"]: e for e in errors_table(layout, "ingest").to_pylist()}
    return rows, errors


def accounted(data_root) -> tuple[int, int, int]:
    """(rows in, rows kept, rows ledgered) summed over the ingest ledger's shard records."""
    layout = Layout(data_root)
    records = [json.loads(p.read_text()) for p in sorted(layout.manifest_dir("ingest").glob("shard-*.json"))]
    ledgered = errors_table(layout, "ingest").num_rows
    return sum(r["rows_in"] for r in records), sum(r["rows"] for r in records), ledgered
