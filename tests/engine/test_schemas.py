"""The checked-in shard schemas (manifests/schemas/) match what the stages write."""
import json

import pytest

from pipeline.cli import load_config
from pipeline.schemas import SCHEMA_DIR, stage_schemas


@pytest.mark.parametrize("recipe", ["instructs2s", "multiturn"])
def test_checked_in_schemas_match_the_code(recipe):
    for name, fields in stage_schemas(load_config([f"recipe={recipe}"])).items():
        checked_in = json.loads((SCHEMA_DIR / recipe / f"{name}.json").read_text())
        assert checked_in["fields"] == fields, f"run `python -m pipeline schemas recipe={recipe} --write` ({name})"


def test_schemas_command_checks_without_writing(tmp_path, capsys):
    from pipeline.cli import main
    from pipeline.schemas import schema_drift

    before = {p: p.stat().st_mtime_ns for p in SCHEMA_DIR.rglob("*.json")}
    assert main(["schemas"]) == 0 and "match" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in SCHEMA_DIR.rglob("*.json")} == before, "a check writes nothing"
    assert "ingest" in schema_drift(load_config([]), tmp_path)
