"""What a build ran with: every installed distribution, the interpreter, the CPU and the GPUs.

`manifests/dataset.json` carries this so two builds can be compared: the same lock on the same
machine kind gives byte-identical shards; a different CPU feature set (AVX-512, AMX) or GPU can
change kernel choices in oneDNN, CTranslate2 and torch, and so the numbers. Standard library only,
cheap, and it never imports torch (nor initializes CUDA) itself.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# CPU features that decide which SIMD / matrix kernels numeric libraries dispatch to.
NUMERIC_CPU_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512dq", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16",
    # aarch64 ("Features" in /proc/cpuinfo)
    "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm",
)


def canonical_name(name: str) -> str:
    """PEP 503 normalized project name (what the lock file and pip compare)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def package_freeze() -> dict[str, str]:
    """Every importable distribution and its version, sorted by normalized name. When a name is
    installed twice on sys.path, the first one wins, as for imports. Copies vendored inside
    another package (setuptools puts its `_vendor` folder on sys.path once imported, ray its
    `thirdparty_files`) are not installed packages and are left out."""
    versions: dict[str, str] = {}
    for dist in metadata.distributions(path=[p for p in sys.path if not _inside_a_package(p)]):
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(canonical_name(name), dist.version)
    return dict(sorted(versions.items()))


def _inside_a_package(path_entry: str) -> bool:
    parts = Path(path_entry).parts
    roots = [i for i, part in enumerate(parts) if part in ("site-packages", "dist-packages")]
    return "_vendor" in parts or bool(roots and roots[-1] < len(parts) - 1)


def cpu_record(cpuinfo: str | None = None) -> dict:
    """The CPU model, its numerics-relevant flags and the core counts."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    model, flags = None, set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "Hardware") and model is None and value.strip():
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "model": model or platform.processor() or None,
        "machine": platform.machine(),
        "numeric_flags": [f for f in NUMERIC_CPU_FLAGS if f in flags],
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
    }


def _nvidia_proc_models() -> list[str]:
    models = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            for line in info.read_text().splitlines():
                if line.startswith("Model:"):
                    models.append(line.partition(":")[2].strip())
        except OSError:
            pass
    return models


def _nvidia_smi() -> tuple[list[str], str | None]:
    if not shutil.which("nvidia-smi"):
        return [], None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return [], None
    rows = [[c.strip() for c in line.split(",")] for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not rows:
        return [], None
    return [r[0] for r in rows], (rows[0][1] if len(rows[0]) > 1 else None)


def gpu_record() -> dict:
    """GPU models from the NVIDIA driver (/proc, then nvidia-smi), without initializing CUDA. If
    torch is already imported, also its CUDA/cuDNN versions, the devices it sees when CUDA is
    already initialized, and the CPU kernel level it dispatches to."""
    models, driver = _nvidia_smi()
    if not models:
        models = _nvidia_proc_models()
    record: dict = {"gpus": models, "nvidia_driver": driver}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            record["torch_cuda"] = torch.version.cuda
            record["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
            if torch.cuda.is_initialized():
                record["torch_devices"] = [torch.cuda.get_device_name(i)
                                           for i in range(torch.cuda.device_count())]
                record["cudnn"] = torch.backends.cudnn.version()
        except Exception as exc:  # a record: never a failure of the build
            record["torch_error"] = repr(exc)
    return record


def environment_record() -> dict:
    """Everything above except the package list (dataset.json keeps that under "packages")."""
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "libc": "-".join(platform.libc_ver()) or None,
        "cpu": cpu_record(),
        **gpu_record(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps({"environment": environment_record(), "packages": len(package_freeze())}, indent=1))
