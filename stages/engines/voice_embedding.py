"""Speaker embeddings from Resemblyzer's pretrained voice encoder (a GE2E LSTM; the weights ship
in the `resemblyzer` package, no download).

A clip becomes one 256-d unit-norm vector: the dot product of two clips' vectors (their cosine
similarity) says how alike the voices are. The clip is levelled and long silences are cut (WebRTC
VAD) before the encoder hears it, as Resemblyzer's own preprocessing does.
"""
from __future__ import annotations

import contextlib
from importlib import metadata

import numpy as np

SAMPLE_RATE = 16_000  # what the encoder was trained on (resemblyzer.hparams.sampling_rate)
DIMENSIONS = 256


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run the block on `threads` torch threads, then put back the process's count (other stages
    in the same process set their own)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class VoiceEmbedding:
    def __init__(self, threads: int = 1):
        from resemblyzer import VoiceEncoder

        self.threads = threads
        # torch >= 2.6 loads the packaged checkpoint with weights_only=True: tensors only.
        self.encoder = VoiceEncoder(device="cpu", verbose=False)

    def embed(self, clip: np.ndarray) -> list[float]:
        """16 kHz mono float32 -> 256 floats, L2 norm 1."""
        from resemblyzer import preprocess_wav

        speech = preprocess_wav(np.asarray(clip, dtype=np.float32))  # already 16 kHz: no resampling
        with torch_threads(self.threads):
            vector = self.encoder.embed_utterance(speech.astype(np.float32))
        return vector.astype(np.float32).tolist()

    def version(self) -> str:
        return f"resemblyzer {metadata.version('resemblyzer')} VoiceEncoder (pretrained.pt)"
