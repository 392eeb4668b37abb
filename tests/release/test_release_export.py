"""The release layout written from dialogue rows and from single-turn rows, read back by the
release source (texts, units and audio equal after decode), and the release_units recipe's graph
(release -> units of the assistant audio -> release_export) through the real runner."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf
from release_folder import CONVERSATIONS, build

from pipeline.config import validate
from pipeline.errors import ItemFailure
from pipeline.runner import Runner
from pipeline.shards import Layout, read_table
from stages import audio
from stages.exports import export_format
from stages.exports.settings import ExportSettings
from stages.release_export import OUTPUT, ReleaseExportSettings, ReleaseExportStage
from stages.release_source import ReleaseSettings, ReleaseSource, ReleaseSourceSettings

FORMAT = "instructs2s_release"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    build(root)
    return root


def read_release(path, context_root, failures: tuple[str, ...] = ()) -> dict[str, dict]:
    """Turn rows by id; the ids of the turns ledgered must be `failures`."""
    stage = ReleaseSource("release", ReleaseSettings(source=ReleaseSourceSettings(path=str(path))),
                          {"data_root": str(context_root), "seed": 1})
    results = stage.process(list(stage.read()))
    assert sorted(r.id for r in results if isinstance(r, ItemFailure)) == sorted(failures)
    return {r["id"]: r for r in results if not isinstance(r, ItemFailure)}


def read_source(release, context_root) -> dict[str, dict]:
    """The tiny release, whose turn 2 of instruct_en_2 has no assistant wav."""
    return read_release(release, context_root, ("instruct_en_2-t2", "instruct_en_2-t3"))


def grouped(turn_rows: list[dict], tmp_path) -> list:
    stage = ReleaseExportStage("release_export", ReleaseExportSettings(), {"data_root": str(tmp_path)})
    # The units stage's column: here the release's own units stand in for them.
    return stage.process([{**row, "units": row["release_units"]} for row in turn_rows])


def export(rows: list[dict], schema: pa.Schema, tmp_path):
    shard = tmp_path / "build" / "data" / "train-00000-of-00001.parquet"
    shard.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), shard)
    return export_format(FORMAT, {"train": [shard]}, tmp_path / "out", ExportSettings(formats=[FORMAT]))[1]


def assert_same_turn(back: dict, row: dict) -> None:
    assert (back["instruction_spoken"], back["response"]) == (row["instruction_spoken"], row["response"])
    for side in ("instruction_audio", "response_audio"):
        np.testing.assert_array_equal(audio.decode(back[side]["bytes"])[0], audio.decode(row[side]["bytes"])[0])


def test_dialogue_rows_round_trip(release, tmp_path):
    turn_rows = list(read_source(release, tmp_path).values())
    dialogues = grouped(turn_rows, tmp_path)
    assert [(d["id"], d["num_turns"]) for d in dialogues] == [
        ("instruct_en_1", 1), ("instruct_en_2", 1), ("instruct_en_3", 2)]  # instruct_en_2 cut before its missing wav
    out = export(dialogues, OUTPUT, tmp_path)
    items = json.loads((out / "train" / "conversations.json").read_text())
    assert [len(i["conversation"]) for i in items] == [2, 2, 4]
    third = items[2]["conversation"]
    assert [t["speech"] for t in third] == [f"wav/instruct_en_3/instruct_en_3-{n}-{s}.wav"
                                            for n in (1, 2) for s in ("user", "assistant")]
    assert [t["from"] for t in third] == ["human", "gpt"] * 2 and third[0]["unit"] is None
    back = read_release(out / "train", tmp_path)
    assert sorted(back) == sorted(r["id"] for r in turn_rows)
    for row in turn_rows:
        assert_same_turn(back[row["id"]], row)
        assert back[row["id"]]["release_units"] == row["release_units"]
        assert back[row["id"]]["turns_planned"] == {"instruct_en_2": 1}.get(row["dialogue_id"], row["turns_planned"])


def test_a_gap_cuts_the_dialogue_and_ledgers_the_later_turns(release, tmp_path):
    turn_rows = [r for r in read_source(release, tmp_path).values() if r["id"] != "instruct_en_3-t1"]
    results = grouped(turn_rows, tmp_path)
    failures = [(r.id, r.reason) for r in results if isinstance(r, ItemFailure)]
    assert failures == [("instruct_en_3-t2", "after_dropped_turn")]
    assert [r["id"] for r in results if not isinstance(r, ItemFailure)] == ["instruct_en_1", "instruct_en_2"]


def test_single_turn_rows_round_trip(release, tmp_path):
    first_turns = [r for r in read_source(release, tmp_path).values() if r["turn"] == 1]
    schema = pa.schema([("id", pa.string()), ("instruction_spoken", pa.string()),
                        ("instruction_audio", audio.AUDIO_STRUCT), ("response", pa.string()),
                        ("response_audio", audio.AUDIO_STRUCT), ("response_units", pa.list_(pa.int16()))])
    rows = [{"id": r["dialogue_id"], "instruction_spoken": r["instruction_spoken"], "response": r["response"],
             "instruction_audio": r["instruction_audio"], "response_audio": r["response_audio"],
             "response_units": r["release_units"]} for r in first_turns]
    out = export(rows, schema, tmp_path)
    back = read_release(out / "train", tmp_path)
    assert sorted(back) == [f"{r['id']}-t1" for r in rows]
    for row in rows:
        assert_same_turn(back[f"{row['id']}-t1"], row)
        assert back[f"{row['id']}-t1"]["release_units"] == row["response_units"]


def test_release_units_graph_through_the_runner(release, tmp_path):
    stages = {
        "release": {"kind": "stages.release_source:ReleaseSource", "source": {"path": str(release)}},
        "units": {"kind": "stages.units:UnitsStage", "device": "cpu", "speak_stage": "release",
                  "audio_column": "response_audio", "verify_stage": None, "kmeans": {"k": 4, "sample_items": 10}},
        "release_export": {"kind": "stages.release_export:ReleaseExportStage"},
    }
    cfg = {"profile": "test", "data_root": str(tmp_path), "shard_size": 2, "seed": 1,
           "model_cache": str(tmp_path / "models"), "progress": False, "stages": stages}
    Runner(validate(OmegaConf.create(cfg))).build()
    layout = Layout(tmp_path)
    units = {r["id"]: r["units"] for i in range(2) for r in read_table(layout.shard("units", i)).to_pylist()}
    assert len(units) == 4 and all(u and max(u) < 4 for u in units.values())
    back = read_release(tmp_path / "export" / FORMAT / "train", tmp_path)
    assert {i: r["release_units"] for i, r in back.items()} == units
    assert {r["response"] for r in back.values()} == {t[1] for turns in CONVERSATIONS.values() for t in turns[:2]} - {
        CONVERSATIONS["instruct_en_2"][1][1]}
