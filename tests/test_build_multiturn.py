"""recipe=multiturn end to end on the local profile: dialogues of 1..5 turns, one instruction voice
per dialogue, one row per dialogue that the trainer reads, every lost turn in the ledger.

Turn 1 of a dialogue is the single-turn item, so the build starts from the shared single-turn
build's ingest, rewrite and respond shards (same settings: done, skipped) and pays only for the
dialogue stage and the speech of the turns."""
import json
import shutil

import pyarrow.parquet as pq
import pytest
from local_build import run_build

from pipeline.ledger import errors_table
from pipeline.shards import Layout
from stages.dialogue_turns import planned_turns

SHARED_STAGES = ("ingest", "rewrite", "respond")
MULTITURN = ["recipe=multiturn", "stages.dialogue.fidelity.min_similarity=null",
             "stages.verify_instruction.scores=[]"]  # the speech-gate tests score DNSMOS


@pytest.fixture(scope="module")
def multiturn_build(local_build, tmp_path_factory):
    single, _ = local_build
    root = tmp_path_factory.mktemp("multiturn-build")
    shutil.copy2(single / ".instructs2s-build", root / ".instructs2s-build")
    for stage in SHARED_STAGES:
        for folder in ("stages", "manifests"):
            shutil.copytree(single / folder / stage, root / folder / stage)
    shutil.copytree(single / "cache" / "llm", root / "cache" / "llm")
    result = run_build(root, *MULTITURN)
    assert result.returncode == 0, result.stderr[-4000:]
    return root, result


def dialogues(root):
    return [row for p in sorted((root / "data").glob("*.parquet")) for row in pq.read_table(p).to_pylist()]


def test_turn_one_comes_from_the_single_turn_build_and_later_turns_are_generated(multiturn_build):
    root, result = multiturn_build
    for stage in SHARED_STAGES:
        assert json.loads((root / "manifests" / stage / "stage.json").read_text())["shards_run"] == 0, stage
    # How many items reach the dialogue stage moves with the CPU; the seeded draw of each one's turns does not.
    for t in pq.read_table(Layout(root).shard("dialogue", 0)).to_pylist():
        assert 1 <= t["turn"] <= t["num_turns"] <= t["turns_planned"] <= 5
        assert t["turns_planned"] == planned_turns(1234, t["dialogue_id"], 2.0, 1, 5)


def test_one_row_per_dialogue_with_its_turns_and_one_voice(multiturn_build):
    root, _ = multiturn_build
    rows = dialogues(root)
    for row in rows:
        assert row["num_turns"] == len(row["turns"]) >= 1
        assert [t["turn"] for t in row["turns"]] == list(range(1, row["num_turns"] + 1))
        assert all(t["instruction_audio"]["bytes"] and t["response_units"] for t in row["turns"])
    speak = pq.read_table(Layout(root).shard("speak_instruction", 0)).to_pylist()
    by_dialogue = {}
    for clip in speak:
        by_dialogue.setdefault(clip["id"].rsplit("-t", 1)[0], set()).add(clip["speaker"])
    assert all(len(voices) == 1 for voices in by_dialogue.values())  # every user turn in its dialogue's voice


def test_every_planned_turn_is_kept_or_ledgered_and_the_card_counts_turns(multiturn_build):
    root, _ = multiturn_build
    kept = {f"{row['id']}-t{t['turn']}" for row in dialogues(root) for t in row["turns"]}
    ledgered = {e["id"] for e in errors_table(Layout(root)).to_pylist()}
    planned = {}
    for t in pq.read_table(Layout(root).shard("dialogue", 0)).to_pylist():
        planned[t["dialogue_id"]] = t["turns_planned"]
    dialogue_ids = {r["id"] for r in pq.read_table(Layout(root).shard("respond", 0), columns=["id"]).to_pylist()}
    for dialogue_id in dialogue_ids:
        for turn in range(1, planned.get(dialogue_id, 1) + 1):
            turn_id = f"{dialogue_id}-t{turn}"
            assert turn_id in kept or turn_id in ledgered, turn_id
    card = (root / "README.md").read_text()
    assert "| turns | dialogues | share |" in card and "one per dialogue" in card
    assert (root / "export" / "instructs2s_release").is_dir()


def test_the_trainer_reads_the_dialogue_rows(multiturn_build):
    from omni.data import _instruction_audio, examples

    root, _ = multiturn_build
    rows = dialogues(root)
    every = [e for row in rows for e in examples(row, "every")]
    assert len(every) == sum(row["num_turns"] for row in rows)
    for example in every:
        turn = int(example["id"].rsplit("-t", 1)[1])
        assert len(example["context"]) == turn - 1  # the earlier turns, as text
        assert _instruction_audio(example).size and example["response_units"]
