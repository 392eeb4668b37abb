"""The release source on a tiny copy of the Hub layout: turn rows with both clips and the
release's units, a missing wav ledgered with its turn (through the real runner), the dialogue cut
or dropped after it, and the Hub read refused offline with one line."""
import json

import numpy as np
import pytest
from omegaconf import OmegaConf
from release_folder import CONVERSATIONS, build

from pipeline.config import validate
from pipeline.errors import ConfigError, ItemFailure
from pipeline.ledger import errors_table
from pipeline.runner import Runner
from pipeline.shards import Layout, read_table
from stages import audio
from stages.release_source import ReleaseSettings, ReleaseSource, ReleaseSourceSettings, parse_units

SOURCE = "stages.release_source:ReleaseSource"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    return root, build(root)


def source_stage(tmp_path, **source) -> ReleaseSource:
    settings = ReleaseSettings(source=ReleaseSourceSettings(**source))
    return ReleaseSource("release", settings, {"data_root": str(tmp_path), "seed": 1, "model_cache": str(tmp_path)})


def read_all(stage: ReleaseSource) -> list:
    return stage.process(list(stage.read()))


def test_turn_rows_carry_texts_clips_and_units(release, tmp_path):
    root, clips = release
    results = read_all(source_stage(tmp_path, path=str(root)))
    rows = {r["id"]: r for r in results if not isinstance(r, ItemFailure)}
    assert sorted(rows) == ["instruct_en_1-t1", "instruct_en_2-t1", "instruct_en_3-t1", "instruct_en_3-t2"]
    for row_id, row in rows.items():
        dialogue, turn = row["dialogue_id"], row["turn"]
        assert row_id == f"{dialogue}-t{turn}" and row["turns_planned"] == len(CONVERSATIONS[dialogue])
        user, assistant, units = CONVERSATIONS[dialogue][turn - 1]
        assert (row["instruction"], row["instruction_spoken"], row["response"]) == (user, user, assistant)
        assert row["release_units"] == units
        for side, suffix in (("instruction", "user"), ("response", "assistant")):
            decoded, rate = audio.decode(row[f"{side}_audio"]["bytes"])
            assert rate == 16_000
            np.testing.assert_array_equal(decoded, clips[f"{dialogue}-{turn}-{suffix}.wav"])
        assert json.loads(row["dialogue_meta"])["source"] == "instructs2s_release"


def test_missing_wav_is_ledgered_with_its_turn_by_the_runner(release, tmp_path):
    root, _ = release
    stages = {"release": {"kind": SOURCE, "source": {"path": str(root)}}}
    cfg = {"profile": "test", "data_root": str(tmp_path), "shard_size": 2, "seed": 1,
           "model_cache": str(tmp_path / "models"), "progress": False, "stages": stages}
    Runner(validate(OmegaConf.create(cfg))).build()
    layout = Layout(tmp_path)
    failures = {r["id"]: r for r in errors_table(layout, "release").to_pylist()}
    assert failures["instruct_en_2-t2"]["reason"] == "missing_audio"
    assert "turn 2: response speech not found" in failures["instruct_en_2-t2"]["detail"]
    assert "instruct_en_2/instruct_en_2-2-assistant.wav" in failures["instruct_en_2-t2"]["detail"]
    assert failures["instruct_en_2-t3"]["reason"] == "after_bad_turn"
    assert sorted(failures) == ["instruct_en_2-t2", "instruct_en_2-t3"]
    # Two conversations a shard: every turn of a conversation sits in its conversation's shard.
    kept = [read_table(layout.shard("release", i), ["id", "dialogue_id"]).to_pylist() for i in range(2)]
    assert [sorted({r["dialogue_id"] for r in shard}) for shard in kept] == [
        ["instruct_en_1", "instruct_en_2"], ["instruct_en_3"]]
    assert sum(len(shard) for shard in kept) == 4


def test_drop_policy_ledgers_the_whole_dialogue(release, tmp_path):
    root, _ = release
    stage = source_stage(tmp_path, path=str(root))
    stage.settings.bad_turn = "drop"
    results = read_all(stage)
    failures = {r.id: r.reason for r in results if isinstance(r, ItemFailure)}
    assert failures == {"instruct_en_2-t1": "dialogue_dropped", "instruct_en_2-t2": "missing_audio",
                        "instruct_en_2-t3": "after_bad_turn"}
    assert not any(r["dialogue_id"] == "instruct_en_2" for r in results if not isinstance(r, ItemFailure))


def test_bad_records_and_unit_strings_are_ledgered(tmp_path):
    folder = tmp_path / "bad"
    build(folder)
    items = json.loads((folder / "instruct_en_200k_data_cosy2.json").read_text())
    items[0]["conversation"][1]["unit"] = "<12>x<13>"
    items[2]["conversation"] = items[2]["conversation"][:1]  # a human turn without its answer
    items.append(dict(items[0]))  # the same id again
    (folder / "instruct_en_200k_data_cosy2.json").write_text(json.dumps(items))
    failures = {r.id: r for r in read_all(source_stage(tmp_path, path=str(folder))) if isinstance(r, ItemFailure)}
    assert failures["instruct_en_1-t1"].reason == "bad_units"
    assert failures["instruct_en_3"].reason == "unreadable_record" and "human/gpt pairs" in failures["instruct_en_3"].detail
    assert failures["instruct_en_1"].reason == "unreadable_record" and "already taken" in failures["instruct_en_1"].detail


def test_parse_units():
    assert parse_units("<12><34><34>") == [12, 34, 34]
    assert parse_units(None) is None
    assert isinstance(parse_units("<12> <34>"), str)


def test_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="release source not found"):
        source_stage(tmp_path, path=str(tmp_path / "nowhere")).check()


def test_hub_read_offline_without_a_cached_copy_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    stage = source_stage(tmp_path, path=None, revision="0" * 40)
    with pytest.raises(ConfigError, match="Point source.path at a local copy") as caught:
        next(stage.read())
    assert "\n" not in str(caught.value)
