"""package_dialogues: turn rows grouped into one row per dialogue, cut or dropped at a lost or
failed turn, every lost turn ledgered with its turn id."""
import numpy as np
import pytest

from pipeline.errors import ItemFailure
from stages import audio
from stages.package_dialogues import PackageDialoguesSettings, PackageDialoguesStage, dialogue_of

INPUTS = {"turns": "dialogue", "instruction_audio": "speak_instruction", "instruction_check": "verify_instruction",
          "response_audio": "speak_response", "response_check": "verify_response", "units": "units"}
CLIP = audio.audio_struct(audio.encode_flac(0.1 * np.sin(np.arange(8000) / 5.0).astype(np.float32), 16000), "x.flac")


def turn_row(dialogue, turn, num_turns, units=(1, 2, 3)):
    return {"id": f"{dialogue}-t{turn}", "dialogue_id": dialogue, "turn": turn, "num_turns": num_turns,
            "source": "alpaca", "instruction": f"q{turn}", "instruction_spoken": f"q{turn}", "response": f"a{turn}",
            "meaning_similarity": None, "answer_similarity": 0.5, "dialogue_meta": "{}",
            "instruction_audio": CLIP, "instruction_speaker": "flite:slt", "instruction_engine": "flite",
            "response_audio": CLIP, "response_speaker": "piper:joe", "response_engine": "piper",
            "instruction_wer": 0.0, "response_wer": 0.0, "units": list(units), "unit_frames": 3,
            "units_per_second": 6.0,
            **{f"{side}_dnsmos_{c}": 3.0 for side in ("instruction", "response") for c in ("p808", "sig", "bak", "ovrl")}}


def stage(policy="cut"):
    return PackageDialoguesStage("package", PackageDialoguesSettings(inputs=INPUTS, on_failed_turn=policy),
                                 {"data_root": "/tmp", "seed": 1})


def split(results):
    rows = {r["id"]: r for r in results if not isinstance(r, ItemFailure)}
    failures = {f.id: f.reason for f in results if isinstance(f, ItemFailure)}
    return rows, failures


def test_turns_become_one_row_per_dialogue_in_turn_order():
    rows, failures = split(stage().process([turn_row("a", 2, 2), turn_row("a", 1, 2), turn_row("b", 1, 1)]))
    assert not failures and set(rows) == {"a", "b"}
    assert rows["a"]["num_turns"] == 2 and [t["turn"] for t in rows["a"]["turns"]] == [1, 2]
    assert rows["a"]["instruction_speaker"] == "flite:slt" and rows["a"]["source"] == "alpaca"
    assert rows["a"]["turns"][1]["response_units"] == [1, 2, 3]


@pytest.mark.parametrize("policy, kept_turns, later", [("cut", 1, "cut_after_failed_turn"),
                                                       ("drop", 0, "cut_after_failed_turn")])
def test_a_turn_lost_upstream_cuts_or_drops_its_dialogue(policy, kept_turns, later):
    rows, failures = split(stage(policy).process([turn_row("a", 1, 3), turn_row("a", 3, 3)]))  # turn 2 lost upstream
    assert failures["a-t3"] == later  # the turn after the gap is ledgered here
    if kept_turns:
        assert [t["turn"] for t in rows["a"]["turns"]] == [1]
    else:
        assert not rows and failures["a-t1"] == "dialogue_dropped"


def test_a_turn_failing_here_is_ledgered_with_its_reason_and_the_first_turn_loses_the_dialogue():
    rows, failures = split(stage().process([turn_row("a", 1, 2, units=()), turn_row("a", 2, 2)]))
    assert not rows and failures == {"a-t1": "no_units", "a-t2": "cut_after_failed_turn"}
    assert dialogue_of("a-t1") == "a" and dialogue_of("a-t2") == "a-t2"  # only turn 1 loses the dialogue


def test_a_batch_that_raises_is_retried_dialogue_by_dialogue():
    groups = stage().isolation_groups([turn_row("a", 1, 2), turn_row("a", 2, 2), turn_row("b", 1, 1)])
    assert [[r["id"] for r in g] for g in groups] == [["a-t1", "a-t2"], ["b-t1"]]
