"""CosyVoice 2's supervised speech tokenizer (S3 tokenizer v2): 16 kHz speech -> 128-bin log-mel
at 100 frames a second -> two stride-2 convolutions and six FSMN-attention blocks (25 frames a
second) -> a finite scalar quantizer of 8 ternary digits (3**8 = 6561 tokens).

The network is the `s3tokenizer` package's. Its weights come from the released files, read
without pickle: `speech_tokenizer_v2.onnx` (CosyVoice2-0.5B's, an ONNX protobuf, turned into a
state dict by the package's converter) or a state dict saved with torch.save (the package's
PyTorch format), loaded with weights_only=True. Without a file: the same network with seeded
random weights (offline; the tokens carry no meaning).
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.shards import file_sha256

MODEL_NAME = "speech_tokenizer_v2_25hz"  # the package picks the v2 network by this name
RATE_HZ = 25.0  # token frames per second of audio
VOCAB_SIZE = 3**8
SAMPLE_RATE = 16_000
N_MELS = 128
FORMATS = (".onnx", ".pt")


def import_s3tokenizer():
    """The package, imported where torchaudio is not installed (the project's lock leaves it
    out: its builds for this torch are CUDA ones). The package imports torchaudio only for its
    file reader, which is never called here; an inert module stands in while it imports."""
    if "s3tokenizer" in sys.modules:
        return sys.modules["s3tokenizer"]
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        placeholder = types.ModuleType("torchaudio")
        sys.modules["torchaudio"] = placeholder
        try:
            import s3tokenizer
        finally:
            if sys.modules.get("torchaudio") is placeholder:
                del sys.modules["torchaudio"]  # other libraries probe for torchaudio by import
        return s3tokenizer
    import s3tokenizer

    return s3tokenizer


def check_checkpoint(path: Path, sha256: str | None) -> None:
    """The file exists, has a released format's suffix and the pinned sha256 (ValueError, one line)."""
    if path.suffix not in FORMATS:
        raise ValueError(f"{path}: the tokenizer is read from {' or '.join(FORMATS)} files (the released "
                         "speech_tokenizer_v2.onnx or a torch.save state dict)")
    if not path.is_file():
        raise FileNotFoundError(f"S3 tokenizer checkpoint not found: {path}")
    actual = file_sha256(path)
    if sha256 is None:
        raise ValueError(f"no sha256 pinned for {path.name} (its sha256 is {actual}); check it against a "
                         "trusted source, then pin it")
    if actual != sha256:
        raise ValueError(f"{path} has sha256 {actual}, but {sha256} is pinned: wrong or corrupt file")


def read_state(path: Path) -> dict:
    """The network's tensors from a released-format file, without executing pickle code."""
    import torch

    if path.suffix == ".onnx":
        return import_s3tokenizer().onnx2torch(str(path), None, False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path.name} holds a {type(state).__name__}, not a state dict")
    return state


@dataclass(frozen=True)
class S3Spec:
    checkpoint: str | None = None  # .onnx or .pt path; None: seeded random weights
    checkpoint_sha256: str | None = None
    seed: int = 0  # for random weights
    device: str = "cpu"  # cpu | cuda | auto


class S3Tokenizer:
    """`tokens(waves)` -> one int64 array of token ids per 16 kHz clip, repeats kept."""

    rate_hz = RATE_HZ
    vocab_size = VOCAB_SIZE

    def __init__(self, spec: S3Spec):
        import torch

        s3 = import_s3tokenizer()
        self.spec = spec
        if spec.device == "auto":
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch.device(spec.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            model = s3.S3TokenizerV2(MODEL_NAME)
        if spec.checkpoint is None:
            self.identity = f"{MODEL_NAME} random weights (seed {spec.seed})"
        else:
            path = Path(spec.checkpoint).expanduser()
            check_checkpoint(path, spec.checkpoint_sha256)
            missing, unexpected = model.load_state_dict(read_state(path), strict=False)
            if missing or unexpected:
                raise ValueError(f"{path.name} does not fit the S3 tokenizer v2: missing {missing[:5]}, "
                                 f"unexpected {unexpected[:5]}")
            self.identity = f"{path.name} sha256:{spec.checkpoint_sha256}"
        self.model = model.eval().to(self.device)
        self._s3 = s3

    def tokens(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """One forward pass over a (right-padded) batch of clips."""
        import torch

        mels = [self._s3.log_mel_spectrogram(torch.from_numpy(np.asarray(w, dtype=np.float32)), n_mels=N_MELS)
                for w in waves]
        mel, lengths = self._s3.padding(mels)
        with torch.inference_mode():
            codes, counts = self.model.quantize(mel.to(self.device), lengths.to(self.device))
        return [codes[i, :n].cpu().numpy().astype(np.int64) for i, n in enumerate(counts.tolist())]
