"""dataset.json records the full freeze and the machine: interpreter, CPU model and flags, GPUs."""
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from pipeline.environment_record import (
    _inside_a_package,
    canonical_name,
    cpu_record,
    environment_record,
    gpu_record,
)
from pipeline.ledger import write_dataset_record
from pipeline.shards import Layout

REPO = Path(__file__).resolve().parents[2]

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512_bf16 avx512_vnni amx_tile amx_bf16 amx_int8
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2
"""
GRAVITON = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes sha1 sha2 crc32 asimddp sve i8mm bf16
CPU implementer\t: 0x41
"""


def test_dataset_json_records_the_full_freeze_and_the_machine(tmp_path):
    path = write_dataset_record(Layout(tmp_path), {"profile": "test"}, [], started=0.0)
    record = json.loads(path.read_text())
    installed = [p for p in sys.path if not _inside_a_package(p)]  # not copies vendored by ray or setuptools
    every = {canonical_name(d.metadata["Name"]) for d in metadata.distributions(path=installed)}
    assert set(record["packages"]) == every
    assert record["packages"]["pytest"] == metadata.version("pytest")
    assert list(record["packages"]) == sorted(record["packages"])
    env = record["environment"]
    assert env["python"] == record["python"] == platform.python_version()
    assert env["platform"] == platform.platform()
    cpu = env["cpu"]
    assert cpu["logical_cores"] == os.cpu_count() and 1 <= cpu["usable_cores"] <= os.cpu_count()
    if Path("/proc/cpuinfo").exists():
        assert cpu["model"]
        flags = set()
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("flags", "Features"):
                flags |= set(line.split(":", 1)[1].split())
        assert set(cpu["numeric_flags"]) <= flags
    assert isinstance(env["gpus"], list)
    assert environment_record() == env  # the same machine records the same environment


def test_cpu_flags_that_change_kernels_are_picked_out():
    cpu = cpu_record(XEON)
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu["numeric_flags"] == ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
                                    "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"]
    arm = cpu_record(GRAVITON)
    assert arm["numeric_flags"] == ["asimd", "asimddp", "sve", "bf16", "i8mm"]


def test_gpus_come_from_nvidia_smi_without_torch(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H200, 570.86.15'\necho 'NVIDIA H200, 570.86.15'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    record = gpu_record()
    assert record["gpus"] == ["NVIDIA H200", "NVIDIA H200"] and record["nvidia_driver"] == "570.86.15"


def test_recording_never_imports_torch():
    code = ("import sys, pipeline.ledger as l, pipeline.environment_record as e; e.environment_record(); "
            "l.package_versions(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_packages_vendored_on_sys_path_are_not_in_the_freeze():
    import ray  # noqa: F401  (puts ray/thirdparty_files, with its own colorama, on sys.path)
    import setuptools  # noqa: F401  (puts setuptools/_vendor on sys.path)

    from pipeline.environment_record import package_freeze

    assert _inside_a_package("/v/lib/python3.11/site-packages/ray/thirdparty_files")
    assert _inside_a_package("/v/lib/python3.11/site-packages/setuptools/_vendor")
    assert not _inside_a_package("/v/lib/python3.11/site-packages")
    freeze = package_freeze()
    assert "ray" in freeze and "jaraco-text" not in freeze
