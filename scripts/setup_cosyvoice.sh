#!/usr/bin/env bash
# Optional environment for the CosyVoice engine on a CPU-only machine: .venv-cosyvoice.
#
# Why a separate venv: the `cosyvoice-minicpmo` package (the upstream CosyVoice source) declares
# onnxruntime-gpu, modelscope, openai-whisper and torchaudio, and leaves out what its vendored
# Matcha-TTS code imports (conformer, diffusers, lightning, scipy...). Installing that into .venv
# would swap onnxruntime for the GPU build and bring a CUDA torchaudio that cannot import here.
# So: the CPU torch, the package without its dependency list, the CPU onnxruntime, and the rest.
#
# torchaudio: every registry build is linked against CUDA torch and fails to import with the CPU
# torch. CosyVoice imports it at module level and calls it only for zero-shot prompts (resampling
# a prompt, Kaldi fbank for the speaker embedding), never in SFT mode. On CPU we therefore write a
# small stand-in `torchaudio` into the venv: Resample through soxr, fbank through
# kaldi-native-fbank; file I/O and spectrograms raise NotImplementedError.
# GPU machines should install the real torchaudio matching their torch instead.
#
# Usage: scripts/setup_cosyvoice.sh [VENV_DIR]   (default: .venv-cosyvoice beside this repo)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-cosyvoice}"
PYTHON="${PYTHON:-python3.11}"

# Idempotent: a venv made by this very script and constraints is kept.
STAMP="$(cat "$0" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
if [[ "$(cat "$VENV/.setup-stamp" 2>/dev/null)" == "$STAMP" ]] \
    && "$VENV/bin/python" -c "import cosyvoice.cli.cosyvoice" 2>/dev/null; then
  echo "CosyVoice environment up to date: $VENV"
  exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/pip" install -q -c "$ROOT/constraints.txt")
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" --no-deps cosyvoice-minicpmo==0.1.0
# openai-whisper for its tokenizer only: without its dependency list, which pulls triton (1 GB, a GPU
# kernel compiler CosyVoice never calls on CPU).
"${PIP[@]}" --no-deps openai-whisper
# What the CosyVoice + Matcha code imports on the SFT path, with the CPU onnxruntime.
"${PIP[@]}" onnxruntime hyperpyyaml modelscope tiktoken more-itertools numba tqdm inflect omegaconf einops \
  transformers scipy conformer diffusers lightning matplotlib gdown wget hydra-core rich librosa
# What this project's stage code needs to run the speak stage in this venv.
"${PIP[@]}" pyarrow soundfile soxr pyloudnorm pytest
# onnx: to write the random-weight campplus / speech tokenizer files of the test model.
"${PIP[@]}" onnx
"${PIP[@]}" kaldi-native-fbank  # the stand-in torchaudio's fbank (zero-shot prompts)

SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$SITE/torchaudio/compliance"
cat > "$SITE/torchaudio/_stand_in.py" <<'PY'
"""Stand-in for torchaudio on CPU-only test machines (see scripts/setup_cosyvoice.sh). CosyVoice
imports torchaudio at module level and calls it only for zero-shot voice prompts: resampling
(here soxr) and Kaldi fbank features for the speaker embedding (here kaldi-native-fbank)."""


def unavailable(*args, **kwargs):
    raise NotImplementedError("torchaudio is a stand-in here: file I/O and spectrograms need the real torchaudio")


class Unavailable:
    def __init__(self, *args, **kwargs):
        unavailable()
PY
cat > "$SITE/torchaudio/__init__.py" <<'PY'
from torchaudio import compliance, transforms  # noqa: F401
from torchaudio._stand_in import unavailable as load, unavailable as save, unavailable as info  # noqa: F401
PY
cat > "$SITE/torchaudio/compliance/__init__.py" <<'PY'
from torchaudio.compliance import kaldi  # noqa: F401
PY
cat > "$SITE/torchaudio/compliance/kaldi.py" <<'PY'
import kaldi_native_fbank as knf
import numpy as np
import torch


def fbank(waveform, num_mel_bins=23, dither=0.0, sample_frequency=16000.0, **kwargs):
    """Kaldi log-mel filterbank frames [frames, num_mel_bins] of a [1, samples] waveform."""
    if kwargs:
        raise NotImplementedError(f"torchaudio stand-in: fbank options {sorted(kwargs)} are not supported")
    options = knf.FbankOptions()
    options.frame_opts.samp_freq = float(sample_frequency)
    options.frame_opts.dither = float(dither)
    options.mel_opts.num_bins = int(num_mel_bins)
    computer = knf.OnlineFbank(options)
    computer.accept_waveform(float(sample_frequency), waveform[0].detach().cpu().float().numpy().tolist())
    computer.input_finished()
    frames = [computer.get_frame(i) for i in range(computer.num_frames_ready)]
    return torch.from_numpy(np.array(frames, dtype=np.float32).reshape(-1, num_mel_bins))
PY
cat > "$SITE/torchaudio/transforms.py" <<'PY'
import soxr
import torch

from torchaudio._stand_in import Unavailable as MelSpectrogram, Unavailable as Spectrogram  # noqa: F401


class Resample(torch.nn.Module):
    """[channels, samples] from orig_freq to new_freq (soxr, not torchaudio's sinc filter)."""

    def __init__(self, orig_freq=16000, new_freq=16000, **kwargs):
        super().__init__()
        self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)

    def forward(self, waveform):
        if self.orig_freq == self.new_freq:
            return waveform
        out = soxr.resample(waveform.detach().cpu().float().numpy().T, self.orig_freq, self.new_freq)
        return torch.from_numpy(out.T.copy()).to(waveform.device)
PY
"$VENV/bin/python" -c "from cosyvoice.cli.cosyvoice import CosyVoice; print('cosyvoice imports')"
echo "$STAMP" > "$VENV/.setup-stamp"
