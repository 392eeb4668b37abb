"""The composed Hydra config is validated before any work."""
import pytest

from pipeline.cli import load_config
from pipeline.errors import ConfigError


def test_default_config_is_the_local_profile_with_the_sample_source():
    run = load_config([])
    assert run.root.profile == "local"
    ingest = next(n for n in run.stages if n.name == "ingest")
    assert ingest.settings.source.name == "sample"
    assert [p.format for p in ingest.settings.source.parts] == ["alpaca", "ultrachat"]


def test_overrides_reach_stage_settings():
    run = load_config(["source.limit=5", "stages.ingest.max_chars=100", "stages.only=[ingest]"])
    ingest = next(n for n in run.stages if n.name == "ingest")
    assert ingest.settings.source.limit == 5 and ingest.settings.max_chars == 100
    assert run.only == ["ingest"]


@pytest.mark.parametrize("override, message", [
    ("stages.ingest.max_chars=lots", "max_chars"),
    ("+stages.ingest.no_such_knob=1", "no_such_knob"),
    ("stages.ingest.no_such_knob=1", "no_such_knob"),
    ("shard_size=0", "shard_size"),
    ("stages.only=[nope]", "nope"),
])
def test_wrong_keys_and_types_fail_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config([override])


def test_full_profile_selects_the_recipe_source():
    run = load_config(["profile=full"])
    ingest = next(n for n in run.stages if n.name == "ingest")
    assert ingest.settings.source.name == "recipe"
    takes = [(p.dataset, p.take) for p in ingest.settings.source.parts]
    assert takes == [("tatsu-lab/alpaca", None), ("stingning/ultrachat", 150000)]
