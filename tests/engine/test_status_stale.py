"""`status` marks the shards the current config would rebuild, and counts prepare() time."""
import json

from engine_run import build, engine_config
from preparing_stage import PREPARE_SECONDS

from pipeline.ledger import stage_status
from pipeline.shards import Layout
from pipeline.status_table import format_status, stale_shards


def chain(suffix=""):
    return {"source": {"kind": "generated", "items": 300},
            "pass1": {"kind": "passthrough", "upstream": "source", "suffix": suffix},
            "fit": {"kind": "preparing_stage:PreparingStage", "upstream": "pass1"}}


def stale_column(text: str) -> dict[str, str]:
    rows = [line.split() for line in text.splitlines()[1:] if line and not line.startswith("stale")]
    return {row[0]: row[2] for row in rows}


def test_status_marks_stale_shards_and_counts_prepare(tmp_path):
    build(tmp_path, stages=chain())
    assert stale_shards(engine_config(tmp_path, stages=chain())) == {"source": 0, "pass1": 0, "fit": 0}
    changed = engine_config(tmp_path, stages=chain(suffix="!"), only=["fit"])  # status looks at every stage
    assert stale_shards(changed) == {"source": 0, "pass1": 3, "fit": 3}
    assert stale_column(format_status(changed)) == {"source": "0", "pass1": "3", "fit": "3"}

    layout = Layout(tmp_path)
    summary = json.loads(layout.stage_record("fit").read_text())
    assert summary["prepare_s"] >= PREPARE_SECONDS
    shards = sum(json.loads(p.read_text())["elapsed_s"] for p in layout.manifest_dir("fit").glob("shard-*.json"))
    assert stage_status(layout, "fit")["elapsed_s"] >= round(shards + PREPARE_SECONDS, 2) - 0.01
