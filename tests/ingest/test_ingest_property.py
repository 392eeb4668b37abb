"""Property: whatever rows a source file holds, ingest never crashes and every row it read is
either kept or ledgered (rows in = rows out + ledgered rows), in every local format. Each test
writes at least 12 x 100 rows per run."""
import itertools
import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ingest_helpers import accounted, ingest

# Text with everything a corpus can throw: any code point (controls, bidi and zero-width
# characters, lone surrogates, which JSON can escape), plus entities and escape sequences.
FRAGMENTS = ["&quot;", "&amp;", "&#39;", "<b>", "\u202e", "\u200b", "\ufeff", "\x00", "\x1b[31m", "\ud800", ""]
hostile_text = st.tuples(st.text(st.characters(codec=None, exclude_categories=()), max_size=24),
                         st.sampled_from(FRAGMENTS), st.text(max_size=12)).map("".join)
KEYS = st.sampled_from(["instruction", "input", "output", "id", "data", "x"])
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=6,
)
alpaca_record = st.fixed_dictionaries(
    {}, optional={"instruction": st.one_of(hostile_text, json_value), "input": st.one_of(hostile_text, json_value),
                  "output": json_value, "id": json_value})
ultrachat_record = st.fixed_dictionaries(
    {}, optional={"id": st.one_of(st.none(), st.integers(0, 20), st.text(max_size=6)),
                  "data": st.one_of(st.lists(hostile_text, max_size=3), json_value)})
# A row that is not valid JSON: random bytes, kept on one line and free of the characters that
# delimit records, so one broken row stays one row in every format.
broken_row = st.binary(min_size=1, max_size=60).map(
    lambda b: b"{" + bytes(c for c in b if c not in b'\n\r{}[],"\\') + b"}")
ROWS = st.lists(st.one_of(alpaca_record, ultrachat_record, json_value), min_size=50, max_size=120)
BYTES_ROWS = st.lists(st.one_of(alpaca_record.map(lambda r: json.dumps(r).encode()), broken_row),
                      min_size=50, max_size=120)
# No shrinking: with ~100 rows an example it takes minutes; the failing file is printed whole.
SETTINGS = settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate])
FORMATS = itertools.cycle(["alpaca", "ultrachat"])


def check(tmp_path_factory, path, rows_written: int) -> None:
    root = tmp_path_factory.mktemp("run")
    fmt = next(FORMATS)
    rows, errors = ingest(root, f"source={fmt}", f"source.path={path}", "shard_size=50")
    rows_in, kept, ledgered = accounted(root)
    assert rows_in == rows_written
    assert kept + ledgered == rows_in and kept == len(rows)
    assert len({r["id"] for r in rows}) == len(rows)


def new_file(tmp_path_factory, suffix: str):
    return tmp_path_factory.mktemp("src") / f"{uuid.uuid4().hex}{suffix}"


@SETTINGS
@given(rows=ROWS, bytes_rows=BYTES_ROWS)
def test_jsonl_rows_are_all_accounted_for(tmp_path_factory, rows, bytes_rows):
    path = new_file(tmp_path_factory, ".jsonl")
    lines = [json.dumps(r).encode() for r in rows] + bytes_rows
    path.write_bytes(b"\n".join(lines) + b"\n")
    check(tmp_path_factory, path, len(lines))


@SETTINGS
@given(rows=ROWS, bytes_rows=BYTES_ROWS)
def test_json_array_rows_are_all_accounted_for(tmp_path_factory, rows, bytes_rows):
    path = new_file(tmp_path_factory, ".json")
    items = [json.dumps(r).encode() for r in rows] + bytes_rows
    path.write_bytes(b"[\n" + b",\n".join(items) + b"\n]")
    check(tmp_path_factory, path, len(items))


@SETTINGS
@given(rows=st.lists(st.fixed_dictionaries({
    "instruction": st.one_of(st.none(), st.text(max_size=80)),
    "input": st.one_of(st.none(), st.text(max_size=40)),
    "output": st.one_of(st.none(), st.text(max_size=40)),
}), min_size=90, max_size=200))
def test_parquet_rows_are_all_accounted_for(tmp_path_factory, rows):
    path = new_file(tmp_path_factory, ".parquet")
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(
        [("instruction", pa.string()), ("input", pa.string()), ("output", pa.string())])), path)
    check(tmp_path_factory, path, len(rows))
