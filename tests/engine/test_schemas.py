"""The checked-in shard schemas (manifests/schemas/) match what the stages write."""
import json

from pipeline.cli import load_config
from pipeline.schemas import SCHEMA_DIR, stage_schemas


def test_checked_in_schemas_match_the_code():
    for name, fields in stage_schemas(load_config([])).items():
        checked_in = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
        assert checked_in["fields"] == fields, f"run `python -m pipeline schemas` ({name} changed)"
