"""speak -> verify through the engine's shard task: failures go to the ledger, the shard goes on."""
import json

import pyarrow.parquet as pq
import pytest
from speech_helpers import JOE, SENTENCES

from pipeline.errors import InfrastructureError
from pipeline.shards import Layout, write_table
from pipeline.task import ShardTask, load_stage, run_shard
from stages.speak import SpeakSettings
from stages.verify import VerifySettings


def shard_task(stage, kind, settings, context, inputs):
    return ShardTask(stage, kind, settings, context, 0, f"fp-{stage}", ["in"], inputs=inputs)


def test_one_bad_item_is_ledgered_and_its_shard_completes(tmp_path):
    import pyarrow as pa

    layout = Layout(tmp_path)
    context = {"data_root": str(tmp_path), "seed": 7}
    texts = [SENTENCES[0], "", SENTENCES[1], "bad \x00 text", SENTENCES[2]]
    rewrite = layout.shard("rewrite", 0)
    write_table(rewrite, pa.table({"id": [f"i{n}" for n in range(5)], "instruction_spoken": texts}))

    record = run_shard(shard_task("speak_instruction", "speak", SpeakSettings(voices=[JOE]), context,
                                  {"rewrite": str(rewrite)}))
    assert (record["rows_in"], record["rows"], record["errors"]) == (5, 3, 2)
    assert record["error_reasons"] == {"empty_text": 1, "tts_failed": 1}
    assert record["engine_versions"]["piper:joe"].startswith("piper-tts")
    errors = pq.read_table(layout.errors("speak_instruction", 0)).to_pylist()
    assert {(e["id"], e["reason"]) for e in errors} == {("i1", "empty_text"), ("i3", "tts_failed")}

    spoken = pq.read_table(layout.shard("speak_instruction", 0))
    assert spoken.schema.field("audio").type.names == ["bytes", "path"]
    assert spoken.column("sample_rate").to_pylist() == [16000] * 3

    verify = run_shard(shard_task("verify_instruction", "verify", VerifySettings(threads=2), context,
                                  {"speak_instruction": str(layout.shard("speak_instruction", 0)),
                                   "rewrite": str(rewrite)}))
    assert verify["rows"] == 3 and verify["errors"] == 0
    assert verify["metrics"]["wer_items"] == 3
    metrics = verify["metrics"]
    assert metrics["wer_x1000_sum"] / 3 <= 100  # mean WER <= 0.10, kept in the ledger
    assert metrics["reference_words"] > 30 and metrics["word_errors"] / metrics["reference_words"] <= 0.1
    saved = json.loads(layout.shard_record("verify_instruction", 0).read_text())
    assert saved["metrics"] == verify["metrics"]


def test_an_engine_that_cannot_load_stops_the_run(tmp_path):
    settings = SpeakSettings(voices=[{"engine": "piper", "model": str(tmp_path / "missing.onnx")}])
    with pytest.raises(InfrastructureError, match="could not load its engine.*missing.onnx"):
        load_stage("speak_response", "speak", settings, {"data_root": str(tmp_path), "seed": 1})
