"""Engine output (child processes, C code, other libraries' loggers) goes to the run's log; the
console keeps the pipeline's own lines and what the CLI prints to `console`."""
import subprocess
import sys
from pathlib import Path

from pipeline.console import console
from pipeline.run_log import setup_logging

SCRIPT = """
import logging, os, subprocess, sys
from pathlib import Path
from pipeline.console import console
from pipeline.run_log import setup_logging

setup_logging(Path(sys.argv[1]), verbose=sys.argv[2] == "verbose")
subprocess.run([sys.executable, "-c", "import os, sys; print('child stdout'); os.write(2, b'child stderr')"])
os.write(1, b"c-level write\\n")
print("library print")
logging.getLogger("vllm.engine").info("engine chatter")
logging.getLogger("pipeline.runner").info("stage x: started")
logging.getLogger("pipeline.runner").warning("a pipeline warning")
print("summary table", file=console.stdout)
if sys.argv[3] == "crash":
    raise RuntimeError("uncaught")
"""
ENGINE_OUTPUT = ["child stdout", "child stderr", "c-level write", "library print", "engine chatter"]


def run_script(tmp_path: Path, mode: str = "quiet", ending: str = "ok") -> tuple[subprocess.CompletedProcess, str]:
    logs = tmp_path / "logs"
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(logs), mode, ending],
                            capture_output=True, text=True, timeout=60)
    (log_file,) = logs.glob("run-*.log")
    return result, log_file.read_text()


def test_engine_output_of_children_and_libraries_goes_to_the_log(tmp_path):
    result, log = run_script(tmp_path)
    assert result.returncode == 0, result.stderr
    console_text = result.stdout + result.stderr
    for text in ENGINE_OUTPUT:
        assert text not in console_text
        assert text in log
    assert result.stdout == "summary table\n"
    assert result.stderr.splitlines() == ["INFO stage x: started", "WARNING a pipeline warning"]


def test_verbose_keeps_engine_output_on_the_console(tmp_path):
    result, _ = run_script(tmp_path, "verbose")
    for text in ENGINE_OUTPUT:
        assert text in result.stdout + result.stderr
    assert "summary table" in result.stdout


def test_an_uncaught_error_reaches_the_console(tmp_path):
    result, log = run_script(tmp_path, ending="crash")
    assert result.returncode == 1
    assert "RuntimeError: uncaught" in result.stderr
    assert "child stdout" in log and "child stdout" not in result.stdout


def test_console_streams_follow_a_replaced_sys_stdout(tmp_path, capsys):
    """Under a test's capture (sys.stdout is no fd), console output is captured like print()."""
    try:
        setup_logging(tmp_path / "logs")
        print("table", file=console.stdout)
        print("message", file=console.stderr)
    finally:
        console.restore()
    out, err = capsys.readouterr()
    assert out == "table\n" and err == "message\n"
    assert not console.redirected
