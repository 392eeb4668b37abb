"""A user's mistake is one line on stderr and exit code 2, never a traceback, and writes nothing."""
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.cli import main
from pipeline.data_root import MARKER
from pipeline.shards import Layout, write_table
from pipeline.task import ERROR_SCHEMA

REPO = Path(__file__).resolve().parents[2]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv) -> str:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("overrides, message", [
    (["source=alpaca", "source.path={tmp}/missing.jsonl"], "source file not found"),
    (["source=alpaca", "source.path={tmp}"], "is a directory"),
    (["source=alpaca", "source.path={tmp}/rows.csv"], "expected .json, .jsonl or .parquet"),
    (["source.limit=-1"], "source.limit must be >= 0"),
    (["log_level=LOUD"], "log_level must be one of"),
    (["stages.only=[respond]"], "needs 'rewrite', which has not run"),
    (["stages.ingest.alpaca_input=bogus"], "alpaca_input must be one of"),
    (["stages.ingest.max_chars=-1"], "max_chars must be >= 1"),
    (["stages.rewrite.workers=0"], "workers must be >= 1"),
    (["stages.only=[ingest,rewirte]"], "unknown stages ['rewirte']"),
    (["stages.ingest.typo=1"], "typo"),
])
def test_build_user_errors(tmp_path, capsys, overrides, message):
    (tmp_path / "rows.csv").write_text("a,b\n")
    data_root = tmp_path / "run"
    args = [a.format(tmp=tmp_path) for a in overrides]
    line = one_line_error(capsys, "build", f"data_root={data_root}", "progress=false", *args)
    assert message in line
    assert not data_root.exists(), "a refused build writes nothing"


def test_a_data_root_that_is_a_file_or_empty_is_refused(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "is a file" in one_line_error(capsys, "build", f"data_root={a_file}")
    assert "data_root is empty" in one_line_error(capsys, "build", "data_root=")


def test_a_folder_that_is_not_a_build_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    line = one_line_error(capsys, "build", f"data_root={tmp_path}", "stages.only=[ingest]", "progress=false")
    assert "not empty and holds no build" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_stages_only_accepts_a_single_name(tmp_path, capsys):
    code, out, err = run_cli(capsys, "build", f"data_root={tmp_path / 'run'}", "stages.only=ingest",
                             "progress=false", "source.limit=3")
    assert code == 0, err
    assert (tmp_path / "run" / MARKER).is_file()
    assert (tmp_path / "run" / "stages" / "ingest" / "shard-00000.parquet").is_file()


def test_status_and_errors_on_a_folder_without_a_build(tmp_path, capsys):
    for command in ("status", "errors"):
        assert "holds no build" in one_line_error(capsys, command, f"data_root={tmp_path}")


def ledger_with(tmp_path, detail: str, item_id: str):
    layout = Layout(tmp_path)
    (tmp_path / MARKER).write_text("{}")
    rows = [{"stage": "ingest", "shard": 0, "id": item_id, "reason": "bad_record", "detail": detail}]
    write_table(layout.errors("ingest", 0), pa.Table.from_pylist(rows, schema=ERROR_SCHEMA))


def test_errors_takes_options_in_any_order_and_checks_the_stage(tmp_path, capsys):
    ledger_with(tmp_path, "why", "a-1")
    code, out, _ = run_cli(capsys, "errors", "--stage", "ingest", f"data_root={tmp_path}")
    assert code == 0 and "a-1" in out
    code, out, _ = run_cli(capsys, "errors", f"data_root={tmp_path}", "--stage", "ingest")
    assert code == 0 and "a-1" in out
    assert "not a stage" in one_line_error(capsys, "errors", f"data_root={tmp_path}", "--stage", "ingset")


def test_errors_escapes_control_characters_and_offers_formats(tmp_path, capsys):
    ledger_with(tmp_path, "line one\nline two \x1b[31mred\u202e", "id\twith\ttabs\n")
    _, out, _ = run_cli(capsys, "errors", f"data_root={tmp_path}")
    assert "\x1b" not in out and "\u202e" not in out and out.count("\n") == 1
    assert "\\x1b[31m" in out and "\\u202e" in out
    _, out, _ = run_cli(capsys, "errors", f"data_root={tmp_path}", "--format", "json")
    assert json.loads(out)["detail"] == "line one\nline two \x1b[31mred\u202e"
    _, out, _ = run_cli(capsys, "errors", f"data_root={tmp_path}", "--format", "tsv")
    header, row = out.rstrip("\n").split("\n")
    assert header.split("\t") == ["stage", "shard", "id", "reason", "detail"]
    assert row.split("\t")[2] == "id\\twith\\ttabs\\n"
    _, out, _ = run_cli(capsys, "errors", f"data_root={tmp_path}", "--format", "csv")
    import csv
    import io
    assert list(csv.DictReader(io.StringIO(out)))[0]["id"] == "id\twith\ttabs\n"


def test_the_module_entry_point_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipeline", "status", f"data_root={tmp_path}/none"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_the_product_commands_refuse_mistakes_in_one_line(tmp_path, capsys):
    from stages.cli import main as instructs2s

    (tmp_path / MARKER).write_text("{}")
    for argv, message in ((["export", "tfrecord", f"data_root={tmp_path}"], "invalid choice: 'tfrecord'"),
                          (["push", f"data_root={tmp_path}"], "push_to_hub.repo_id"),
                          (["push", f"data_root={tmp_path}", "stages.package.push_to_hub.repo_id=user/name",
                            "stages.package.push_to_hub.token_env=INSTRUCTS2S_TEST_NO_TOKEN"], "set the hub token"),
                          (["status", "--stgae", "x"], "unrecognized arguments: --stgae"),
                          (["bulid"], "unknown command 'bulid'")):
        try:
            code = instructs2s(argv)
        except SystemExit as exc:  # argparse's way out, with our one-line message
            code = exc.code
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1, err
