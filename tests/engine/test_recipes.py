"""A recipe is a config: a toy recipe of stages the engine has never heard of builds, resumes and
ledgers through the same engine, and the shipped recipes compose the graphs they promise."""
import hashlib

import pyarrow.parquet as pq
import pytest

from pipeline.cli import load_config
from pipeline.errors import ConfigError
from pipeline.ledger import errors_table
from pipeline.runner import Runner
from pipeline.shards import Layout

TOY = """\
# @package _global_
recipe: toy
data_root: {root}
shard_size: 4
stages:
  absent: [rewrite, respond]
  source: {{kind: generated, items: 10, text_words: 3}}
  split: {{kind: "toy_stages:SplitInTwo", upstream: source}}
  join: {{kind: "toy_stages:JoinPairs", upstream: split, fail_group: gen-000000006}}
"""


def toy_run(conf_dir, root):
    (conf_dir / "recipe").mkdir(parents=True, exist_ok=True)
    (conf_dir / "recipe" / "toy.yaml").write_text(TOY.format(root=root))
    return load_config(["recipe=toy", f"hydra.searchpath=[file://{conf_dir}]", "progress=false"])


def shard_digests(root):
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "stages").rglob("*.parquet"))}


def test_a_toy_recipe_from_a_yaml_file_builds_without_engine_changes(tmp_path):
    root = tmp_path / "data"
    run = toy_run(tmp_path / "conf", root)
    assert [n.name for n in run.stages] == ["source", "split", "join"]
    Runner(run).build()
    layout = Layout(root)
    split = [r for i in range(3) for r in pq.read_table(layout.shard("split", i)).to_pylist()]
    assert len(split) == 20 and split[0]["id"] == "gen-000000000-t1"
    joined = {r["id"]: r for i in range(3) for r in pq.read_table(layout.shard("join", i)).to_pylist()}
    assert joined["gen-000000000"] == {"id": "gen-000000000", "halves": 2, "text": "0 word word word"}
    # the group that raised is ledgered on its own rows; the rest of its shard is kept
    assert "gen-000000006" not in joined and len(joined) == 9
    ledger = errors_table(layout).to_pylist()
    assert sorted((e["stage"], e["id"], e["reason"]) for e in ledger) == [
        ("join", "gen-000000006-t1", "exception"), ("join", "gen-000000006-t2", "exception")]

    before = shard_digests(root)
    summaries = Runner(toy_run(tmp_path / "conf", root)).build()
    assert [s["shards_run"] for s in summaries] == [0, 0, 0]
    assert shard_digests(root) == before


@pytest.mark.parametrize("recipe, graph", [
    ("instructs2s", {"rewrite": {"ingest"}, "speak_instruction": {"rewrite"}, "units": {"speak_response", "verify_response"},
                     "package": {"ingest", "rewrite", "respond", "speak_instruction", "verify_instruction",
                                 "speak_response", "verify_response", "units"}}),
    ("multiturn", {"dialogue": {"ingest", "rewrite", "respond"}, "speak_instruction": {"dialogue"},
                   "verify_response": {"speak_response", "dialogue"},
                   "package": {"dialogue", "speak_instruction", "verify_instruction", "speak_response",
                               "verify_response", "units"}}),
])
def test_the_shipped_recipes_wire_the_graph_in_conf(recipe, graph):
    run = load_config([f"recipe={recipe}"])
    runner = Runner(run)
    runner.order()  # every stage after its inputs
    for name, inputs in graph.items():
        assert set(runner.describe(runner.by_name[name]).input_columns()) == inputs, name


@pytest.mark.parametrize("profile", ["local", "full"])
def test_the_release_recipe_composes_under_every_profile(profile):
    run = load_config(["recipe=release_units", f"profile={profile}", "source=instructs2s_release"])
    assert [(n.name, n.kind) for n in run.stages] == [("release", "release"), ("units", "units"),
                                                      ("release_export", "release_export")]
    units = {n.name: n for n in run.stages}["units"].settings
    assert (units.speak_stage, units.audio_column, units.verify_stage) == ("release", "response_audio", None)
    Runner(run).order()


def test_a_column_no_upstream_stage_writes_is_one_line_before_any_work(tmp_path):
    run = load_config(["recipe=multiturn", f"data_root={tmp_path}", "stages.speak_instruction.voice_by=dialog_id"])
    with pytest.raises(ConfigError, match=r"stage 'speak_instruction' reads \['dialog_id'\] from 'dialogue'"):
        Runner(run).preflight()
    assert not any(tmp_path.iterdir())
