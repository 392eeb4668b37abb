"""CosyVoice-300M-SFT through the upstream `CosyVoice` API in SFT mode (the recipe's instruction voices).

`model` is a CosyVoice model folder (cosyvoice.yaml, llm.pt, flow.pt, hift.pt, campplus.onnx,
speech_tokenizer_v1.onnx, spk2info.pt) or a ModelScope name (`iic/CosyVoice-300M-SFT`) that the
upstream wrapper downloads. The speaker is one of the model's SFT speakers; the recipe's English
ones are "英文男" (male) and "英文女" (female).

The upstream code comes from the `cosyvoice-minicpmo` package; on CPU machines it lives in a
separate venv (scripts/setup_cosyvoice.sh explains why).
"""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np


class CosyVoiceEngine:
    kind = "cosyvoice"

    def __init__(self, model: str, threads: int = 1, text_frontend: bool = False, speed: float = 1.0,
                 fp16: bool = False):
        import torch
        from cosyvoice.cli.cosyvoice import CosyVoice

        if not torch.cuda.is_available():
            torch.set_num_threads(threads)
        folder = Path(model).expanduser()
        if not folder.is_dir():
            from modelscope import snapshot_download  # what the upstream wrapper itself would call

            folder = Path(snapshot_download(model))
        self.model_name = model
        self.model = CosyVoice(str(folder), load_jit=False, load_trt=False, fp16=fp16)
        self.load_llm_weights(folder)
        self.native_rate = int(self.model.sample_rate)
        # Texts arrive already normalized for speech (stages/text/normalize.py); upstream's own
        # text front end needs packages (ttsfrd / WeTextProcessing) some builds leave out.
        self.text_frontend = text_frontend
        self.speed = speed

    def load_llm_weights(self, folder: Path) -> None:
        """The `cosyvoice-minicpmo` build of the upstream code skips llm.pt when loading (its host
        model brings its own LLM); load it here so SFT synthesis uses the real text-to-token LM.
        With the upstream package this loads the same weights a second time: harmless."""
        import torch

        llm = self.model.model.llm
        state = torch.load(folder / "llm.pt", map_location=self.model.model.device, weights_only=True)
        llm.load_state_dict(state, strict=True)
        llm.to(self.model.model.device).eval()

    def check_speaker(self, speaker: str | None) -> None:
        available = self.model.list_available_spks()
        if speaker not in available:
            raise ValueError(f"CosyVoice model {self.model_name} has no SFT speaker {speaker!r}; it has {available}")

    def synthesize(self, text: str, speaker: str | None, seed: int) -> tuple[np.ndarray, int]:
        from cosyvoice.utils.common import set_all_random_seed

        # The LLM samples speech tokens: seeding per item makes a rerun say it the same way.
        set_all_random_seed(seed % (2**32))
        pieces = [
            out["tts_speech"].squeeze(0).float().cpu().numpy()
            for out in self.model.inference_sft(text, speaker, stream=False, speed=self.speed,
                                                text_frontend=self.text_frontend)
        ]
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return audio, self.native_rate

    def version(self) -> str:
        for package in ("cosyvoice", "cosyvoice-minicpmo"):
            try:
                return f"{package} {metadata.version(package)}, {self.model_name}"
            except metadata.PackageNotFoundError:
                continue
        return f"cosyvoice (source), {self.model_name}"
