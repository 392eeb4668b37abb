"""CosyVoice through the upstream API: SFT speakers (CosyVoice-300M-SFT, the recipe's instruction
voices) or zero-shot cloning from a prompt clip (CosyVoice2-0.5B, the multi-turn voice bank).

`model` is a model folder or a ModelScope name (`iic/CosyVoice-300M-SFT`, `iic/CosyVoice2-0.5B`)
fetched with ModelScope. A folder with cosyvoice2.yaml loads as CosyVoice 2 (flow, hift, llm.pt,
campplus.onnx, speech_tokenizer_v2.onnx, CosyVoice-BlankEN/), any other as CosyVoice
(cosyvoice.yaml, ..., speech_tokenizer_v1.onnx, spk2info.pt).

The speaker is either
  - an SFT speaker of the model; CosyVoice-300M-SFT's English ones are "英文男" and "英文女", or
  - `prompt:/path/clip.wav`: zero-shot, in the voice of that clip (any format soundfile reads,
    at most 30 s), whose transcript is the text file beside it (`/path/clip.txt`). All voices of
    one model share one loaded engine; each prompt is analysed once, when the stage starts.

The upstream code comes from the `cosyvoice-minicpmo` package; on CPU machines it lives in a
separate venv (scripts/setup_cosyvoice.sh explains why).
"""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np

from pipeline.errors import MissingModelError

PROMPT_PREFIX = "prompt:"
PROMPT_RATE = 16000  # the upstream frontend takes prompts at 16 kHz
MAX_PROMPT_SECONDS = 30.0  # the upstream speech tokenizer refuses longer prompts


def prompt_files(speaker: str | None, key: str = "speaker") -> tuple[Path, str] | None:
    """(clip, transcript) of a `prompt:` speaker, None for an SFT speaker; MissingModelError (one
    line) when the clip or its transcript is missing, empty or too long. Needs no model: the speak
    stage's preflight calls it too."""
    if not isinstance(speaker, str) or not speaker.startswith(PROMPT_PREFIX):
        return None
    import soundfile

    clip = Path(speaker[len(PROMPT_PREFIX):]).expanduser()
    transcript = clip.with_suffix(".txt")
    how = f"a prompt voice is a clip with its transcript beside it, {transcript.name}"
    if not clip.is_file():
        raise MissingModelError(f"{key}: prompt clip {clip} does not exist ({how})")
    if not transcript.is_file() or not transcript.read_text(encoding="utf-8").strip():
        raise MissingModelError(f"{key}: prompt clip {clip} has no transcript at {transcript} ({how})")
    try:
        seconds = soundfile.info(str(clip)).duration
    except RuntimeError as exc:
        raise MissingModelError(f"{key}: prompt clip {clip} is not audio soundfile can read: {exc}") from None
    if not 0 < seconds <= MAX_PROMPT_SECONDS:
        raise MissingModelError(f"{key}: prompt clip {clip} lasts {seconds:.1f} s; a prompt must be 0-{MAX_PROMPT_SECONDS:.0f} s")
    return clip, transcript.read_text(encoding="utf-8").strip()


def load_prompt(clip: Path):
    """The clip as the frontend wants it: mono float32 at 16 kHz, a [1, samples] tensor."""
    import soundfile
    import soxr
    import torch

    audio, rate = soundfile.read(str(clip), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != PROMPT_RATE:
        audio = soxr.resample(audio, rate, PROMPT_RATE).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(audio)).unsqueeze(0)


class CosyVoiceEngine:
    kind = "cosyvoice"

    def __init__(self, model: str, threads: int = 1, text_frontend: bool = False, speed: float = 1.0,
                 fp16: bool = False):
        import torch
        from cosyvoice.cli.cosyvoice import CosyVoice, CosyVoice2

        if not torch.cuda.is_available():
            torch.set_num_threads(threads)
        folder = Path(model).expanduser()
        if not folder.is_dir():
            from modelscope import snapshot_download  # what the upstream wrapper itself would call

            folder = Path(snapshot_download(model))
        self.model_name = model
        self.version2 = (folder / "cosyvoice2.yaml").is_file()
        model_class = CosyVoice2 if self.version2 else CosyVoice
        self.model = model_class(str(folder), load_jit=False, load_trt=False, fp16=fp16)
        if self.version2 and getattr(self.model.model, "llm", None) is None:
            self.attach_llm2(folder)
        self.load_llm_weights(folder)
        self.prompts: dict[str, str] = {}  # prompt speaker -> its transcript, analysed by check_speaker
        self.native_rate = int(self.model.sample_rate)
        # Texts arrive already normalized for speech (stages/text/normalize.py); upstream's own
        # text front end needs packages (ttsfrd / WeTextProcessing) some builds leave out.
        self.text_frontend = text_frontend
        self.speed = speed

    def load_llm_weights(self, folder: Path) -> None:
        """The `cosyvoice-minicpmo` build of the upstream code skips llm.pt when loading (its host
        model brings its own LLM); load it here so synthesis uses the model's text-to-token LM.
        With the upstream package this loads the same weights a second time: harmless."""
        import torch

        llm = self.model.model.llm
        state = torch.load(folder / "llm.pt", map_location=self.model.model.device, weights_only=True)
        llm.load_state_dict(state, strict=True)
        llm.to(self.model.model.device).eval()

    def attach_llm2(self, folder: Path) -> None:
        """The `cosyvoice-minicpmo` build's CosyVoice2 leaves out the text-to-token LM (its host
        model has its own): build it from the model's config, as the upstream package does.
        (Reading the config builds flow and vocoder once more; they are dropped on return.)"""
        from hyperpyyaml import load_hyperpyyaml

        with open(folder / "cosyvoice2.yaml", encoding="utf-8") as f:
            configs = load_hyperpyyaml(f, overrides={"qwen_pretrain_path": str(folder / "CosyVoice-BlankEN")})
        self.model.model.llm = configs["llm"]

    def check_speaker(self, speaker: str | None) -> None:
        prompt = prompt_files(speaker)
        if prompt is not None:
            clip, transcript = prompt
            if speaker not in self.prompts:
                # Speaker embedding, prompt tokens and mel computed once, reused by every item.
                self.model.add_zero_shot_spk(transcript, load_prompt(clip), speaker)
                self.prompts[speaker] = transcript
            return
        available = [s for s in self.model.list_available_spks() if s not in self.prompts]
        if speaker not in available:
            raise ValueError(f"CosyVoice model {self.model_name} has no SFT speaker {speaker!r}; it has {available}"
                             f" (or give a prompt clip: {PROMPT_PREFIX}/path/clip.wav)")

    def synthesize(self, text: str, speaker: str | None, seed: int) -> tuple[np.ndarray, int]:
        from cosyvoice.utils.common import set_all_random_seed

        if speaker not in self.prompts and prompt_files(speaker) is not None:
            self.check_speaker(speaker)
        # The LLM samples speech tokens: seeding per item makes a rerun say it the same way.
        set_all_random_seed(seed % (2**32))
        options = {"stream": False, "speed": self.speed, "text_frontend": self.text_frontend}
        if speaker in self.prompts:
            outputs = self.model.inference_zero_shot(text, self.prompts[speaker], None, zero_shot_spk_id=speaker, **options)
        else:
            outputs = self.model.inference_sft(text, speaker, **options)
        pieces = [out["tts_speech"].squeeze(0).float().cpu().numpy() for out in outputs]
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return audio, self.native_rate

    def version(self) -> str:
        for package in ("cosyvoice", "cosyvoice-minicpmo"):
            try:
                return f"{package} {metadata.version(package)}, {self.model_name}"
            except metadata.PackageNotFoundError:
                continue
        return f"cosyvoice (source), {self.model_name}"
