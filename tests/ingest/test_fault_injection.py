"""fault_fraction: a stage's engine raises on a deterministic share of items; the run completes,
exactly those items are ledgered, and a rerun gives the same bytes."""
import json

from ingest_helpers import ingest

from pipeline.shards import Layout, file_sha256
from pipeline.task import injected_fault


def write_source(path, n=300):
    path.write_text("\n".join(json.dumps({"instruction": f"Tell me one fact about the number {i}.",
                                          "input": "", "output": "ok"}) for i in range(n)))
    return path


def test_injected_faults_are_exactly_the_ledgered_items_and_reruns_agree(tmp_path):
    source = write_source(tmp_path / "rows.jsonl")
    args = ("source=alpaca", f"source.path={source}", "stages.ingest.fault_fraction=0.1", "shard_size=64")
    rows, errors = ingest(tmp_path / "a", *args)
    chosen = {f"alpaca-{i:06d}" for i in range(300) if injected_fault(f"alpaca-{i:06d}", 0.1)}
    assert 15 <= len(chosen) <= 45  # about 10%
    assert set(errors) == chosen
    assert all(e["reason"] == "exception" and "injected fault" in e["detail"] for e in errors.values())
    assert len(rows) == 300 - len(chosen)

    ingest(tmp_path / "b", *args)
    for sub in ("stages/ingest", "manifests/ingest"):
        files = sorted(p.name for p in (tmp_path / "a" / sub).glob("*.parquet"))
        assert files and all(file_sha256(tmp_path / "a" / sub / f) == file_sha256(tmp_path / "b" / sub / f)
                             for f in files)
    assert Layout(tmp_path / "a").shard("ingest", 4).exists()
