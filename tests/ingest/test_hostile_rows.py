"""Hostile source rows: each is a ledger row naming where it was, never a crash or a lost row."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_helpers import accounted, ingest

from pipeline.errors import ConfigError

GOOD = {"instruction": "Name three kinds of clouds.", "input": "", "output": "Cirrus."}


def jsonl(tmp_path, *lines: bytes, name="rows.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_lone_surrogate_escape_is_one_ledgered_row(tmp_path):
    path = jsonl(tmp_path, json.dumps(GOOD).encode(), b'{"instruction": "What is \\ud800 light?"}')
    rows, errors = ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")
    assert [r["id"] for r in rows] == ["alpaca-000000"]
    assert errors["alpaca-000001"]["reason"] == "unreadable_record"
    assert "rows.jsonl line 2" in errors["alpaca-000001"]["detail"] and "surrogate" in errors["alpaca-000001"]["detail"]


def test_deep_nesting_is_one_ledgered_row(tmp_path):
    path = jsonl(tmp_path, b'{"instruction": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                 b'{"instruction": ' + b"[" * 40 + b"]" * 40 + b"}", json.dumps(GOOD).encode())
    rows, errors = ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")
    assert [r["id"] for r in rows] == ["alpaca-000002"]
    assert "nested too deeply" in errors["alpaca-000000"]["detail"]
    assert "nested deeper than" in errors["alpaca-000001"]["detail"]


def test_a_json_array_isolates_bad_bytes_and_syntax_errors_per_record(tmp_path):
    path = tmp_path / "rows.json"
    path.write_bytes(b"[\n" + b",\n".join([
        json.dumps(GOOD).encode(),
        b'{"instruction": "bad \xff byte"}',
        b'{"instruction": "missing a quote}',
        b'{"instruction": "a comma" "missing"}',
        json.dumps({**GOOD, "instruction": "Name two oceans."}).encode(),
    ]) + b"\n]\n")
    rows, errors = ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")
    assert [r["id"] for r in rows] == ["alpaca-000000", "alpaca-000004"]
    assert {k: e["reason"] for k, e in errors.items()} == {
        "alpaca-000001": "unreadable_record", "alpaca-000002": "unreadable_record",
        "alpaca-000003": "unreadable_record"}
    assert "invalid UTF-8 byte 0xff" in errors["alpaca-000001"]["detail"]
    assert "rows.json record 3 (line 5)" in errors["alpaca-000003"]["detail"]


def test_a_json_array_with_garbage_or_a_missing_comma_loses_no_record(tmp_path):
    good = [json.dumps({**GOOD, "instruction": f"Name {n} kinds of clouds."}).encode() for n in ("two", "three", "four")]
    path = tmp_path / "rows.json"
    path.write_bytes(b"[" + good[0] + b" " + good[1] + b", garbage, " + good[2] + b"]")
    rows, errors = ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")
    assert [r["prompt"] for r in rows] == ["Name two kinds of clouds.", "Name three kinds of clouds.",
                                           "Name four kinds of clouds."]
    assert [e["reason"] for e in errors.values()] == ["unreadable_record"]


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"  \n", "is empty"),
    (b'"just a string"', "top level is a str"),
    (b"42", "top level is a int"),
    (b'{"data": "notalist"}', "expected a list of records"),
    (b'{"foo": [1, 2]}', "keys \\['foo'\\]"),
    (b"[{\"instruction\": \"x\"}", "ends inside its list"),
])
def test_a_json_file_that_is_not_a_list_of_records_stops_with_one_line(tmp_path, content, message):
    path = tmp_path / "rows.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")


def test_an_empty_jsonl_file_stops_with_one_line(tmp_path):
    path = jsonl(tmp_path, b"", b"   ")
    with pytest.raises(ConfigError, match="holds no records"):
        ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")


@pytest.mark.parametrize("name, content", [
    ("bom.jsonl", b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n"),
    ("bom.json", b"\xef\xbb\xbf" + json.dumps([GOOD]).encode()),
])
def test_a_utf8_bom_keeps_the_first_row(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    rows, errors = ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")
    assert [r["id"] for r in rows] == ["alpaca-000000"] and not errors


@pytest.mark.parametrize("raw, clean", [
    ("Say &quot;hello&quot; &amp; &#39;bye&#39; to Tom", "Say \"hello\" & 'bye' to Tom"),
    ("What is\x00 the \x1b[31mred\x1b[0m planet?", "What is the red planet?"),
    ("Explain \u202ethe\u202c zero\u200b-width\u200d space\ufeff.", "Explain the zero-width space."),
    ("Why is the <b>sky</b> blue?<br/>Tell me.", "Why is the sky blue? Tell me."),
    ("Which cafe\u0301 in Paris is the oldest one in the city?", "Which caf\u00e9 in Paris is the oldest one in the city?"),
])
def test_text_is_cleaned_before_any_model_and_the_raw_prompt_is_kept(tmp_path, raw, clean):
    path = jsonl(tmp_path, json.dumps({**GOOD, "instruction": raw}).encode())
    rows, errors = ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")
    assert not errors
    assert rows[0]["prompt"] == clean and rows[0]["instruction"] == clean
    assert rows[0]["prompt_raw"] == raw


def test_nothing_speakable_left_is_ledgered(tmp_path):
    path = jsonl(tmp_path, json.dumps({**GOOD, "instruction": "\u200b\u202e&nbsp;<br>\x07"}).encode())
    rows, errors = ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")
    assert not rows and errors["alpaca-000000"]["reason"] == "empty_after_cleaning"


def test_generated_and_explicit_ids_never_collide(tmp_path):
    turns = ["How do {} form?", "They just do."]
    lines = [json.dumps({"id": f"{i:06d}", "data": [turns[0].format(f"thing{i}"), turns[1]]}).encode()
             for i in range(6)]
    lines.append(json.dumps({"id": None, "data": [turns[0].format("clouds"), turns[1]]}).encode())
    lines.append(json.dumps({"id": "000006", "data": [turns[0].format("rivers"), turns[1]]}).encode())
    lines.append(json.dumps({"id": 1, "data": [turns[0].format("stars"), turns[1]]}).encode())
    path = jsonl(tmp_path, *lines)
    rows, errors = ingest(tmp_path / "run", "source=ultrachat", f"source.path={path}")
    ids = [r["id"] for r in rows]
    assert "ultrachat#000006" in ids and "ultrachat-000006" in ids  # no id at row 6; the id "000006"
    assert "ultrachat-1" in ids and "ultrachat-000001" in ids  # 1 and "000001" are different ids
    assert not errors


def test_an_id_collision_names_both_rows(tmp_path):
    path = jsonl(tmp_path, json.dumps({"id": "1", "data": ["How do clouds form?", ""]}).encode(),
                 json.dumps({"id": 1, "data": ["How do stars form?", ""]}).encode())
    rows, errors = ingest(tmp_path / "run", "source=ultrachat", f"source.path={path}")
    assert [r["prompt"] for r in rows] == ["How do clouds form?"]
    detail = errors["ultrachat-1"]["detail"]
    assert errors["ultrachat-1"]["reason"] == "duplicate_id"
    assert "rows.jsonl line 2" in detail and "rows.jsonl line 1" in detail


def test_parquet_with_bytes_where_text_belongs_is_ledgered_per_row(tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"instruction": pa.array([b"How?", b"\xff\xfe"], pa.binary())}), path)
    rows, errors = ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")
    assert not rows and accounted(tmp_path / "run") == (2, 0, 2)
    assert "type bytes" in errors["alpaca-000000"]["detail"]


def test_a_file_that_is_not_parquet_stops_with_one_line(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text("not parquet")
    with pytest.raises(ConfigError, match="not a readable Parquet file"):
        ingest(tmp_path / "run", "source=alpaca", f"source.path={path}")


def test_a_relative_source_path_is_taken_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "samples").mkdir()
    jsonl(tmp_path / "samples", json.dumps(GOOD).encode(), name="mine.jsonl")
    monkeypatch.chdir(tmp_path)
    rows, _ = ingest(tmp_path / "run", "source=alpaca", "source.path=samples/mine.jsonl")
    assert [r["prompt"] for r in rows] == [GOOD["instruction"]]
