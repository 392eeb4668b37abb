"""Answer one spoken question with the latest checkpoint of a run, in text and in speech.

    python -m omni.infer data_root=DIR audio=question.wav [output=answer.wav] [infer.omega=10]

Prints each chunk of `omega` units as soon as it is final ("chunk: 12 873 4 ..."), then the
text response ("text: ..."), the whole unit sequence ("units: ...") and the latency to the
first chunk of audio. Units come from greedy CTC (per-frame argmax, repeats merged, blanks
dropped) over the speech decoder's output for the states h(y_1..y_i) of the tokens generated so
far (see omni/model.py for the alignment). As in the paper's streaming mode, every chunk of
`omega` units goes through the unit vocoder as soon as it is final; `output=` writes the
concatenated 16 kHz speech.

The model is rebuilt from the config saved in the checkpoint, except `trust_remote_code`: that
comes from this command line (off unless given), never from a checkpoint folder. The vocoder is
the checkpoint profile's `vocoder` block unless `infer.vocoder_path` names a released-format
vocoder folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from . import audio as audio_io
from . import checkpoint as ckpt
from .build import build_model, load_tokenizer
from .config import UserError, command_line, run_dir
from .ctc import UnitStreamer, greedy_units
from .prompt import PromptBuilder

log = logging.getLogger("omni.infer")


@dataclass
class Answer:
    text: str
    units: list[int]
    audio: np.ndarray  # 16 kHz float32 speech of the units (empty without a vocoder or units)
    first_audio_s: float | None  # question features ready -> first audio chunk synthesized (None: no audio)
    seconds: float  # the whole answer: generation and synthesis


def find_checkpoint(cfg: DictConfig) -> ckpt.Checkpoint:
    if cfg.infer.checkpoint:
        path = Path(cfg.infer.checkpoint)
        if not (path / "meta.json").is_file():
            raise UserError(f"infer.checkpoint={path} is not a checkpoint folder (no meta.json)")
        meta = ckpt.Checkpoint(path, 0, 0).meta
        return ckpt.Checkpoint(path, int(meta["stage"]), int(meta["step"]))
    if not Path(cfg.data_root).is_dir():
        raise UserError(f"data_root {cfg.data_root} is not a folder")
    last = ckpt.latest(run_dir(cfg))
    if last is None:
        raise UserError(f"no checkpoint in {run_dir(cfg)}; train first (python -m omni.train data_root=...)")
    if last.stage < 2:
        log.warning("latest checkpoint is from stage 1: the units come from an untrained speech decoder")
    return last


def saved_config(cfg: DictConfig, last: ckpt.Checkpoint) -> DictConfig:
    """The config the checkpoint was trained with (this invocation's when none was saved)."""
    saved = last.path / "config.yaml"
    if not saved.exists():
        return cfg
    tcfg = OmegaConf.load(saved)
    _trust_from_invocation(cfg, tcfg)
    return tcfg


def load(cfg: DictConfig, device: str = "cpu", last: ckpt.Checkpoint | None = None):
    """(model, prompt builder, checkpoint) rebuilt from the checkpoint's own config."""
    last = last or find_checkpoint(cfg)
    tcfg = saved_config(cfg, last)
    tokenizer = load_tokenizer(tcfg.train.tokenizer)
    model = build_model(tcfg.train, tokenizer, seed=int(tcfg.seed), pretrained=False)
    ckpt.load_matching(model, last.path)
    model.set_stage(2)
    model.to(device).eval()
    d = tcfg.data
    builder = PromptBuilder(tokenizer, d.system_prompt, d.instruction, model.speech_slots,
                            d.speech_placeholder, tcfg.train.tokenizer.end_of_turn)
    return model, builder, last


def vocoder_settings(cfg: DictConfig, last: ckpt.Checkpoint) -> DictConfig | None:
    """`infer.vocoder_path`, else the vocoder block of the checkpoint's profile (else this one's)."""
    settings = OmegaConf.select(saved_config(cfg, last), "train.vocoder")
    if settings is None:
        settings = OmegaConf.select(cfg, "train.vocoder")
        if settings is not None:
            log.warning("%s was saved without vocoder settings: using train=%s's", last.path, cfg.train.name)
    if settings is None:
        return None
    settings = OmegaConf.create(OmegaConf.to_container(settings, resolve=True))
    if cfg.infer.get("vocoder_path"):  # a folder given by hand: nothing to fetch, no published pin
        settings.path, settings.url, settings.sha256 = str(cfg.infer.vocoder_path), None, None
    return settings


def _trust_from_invocation(cfg: DictConfig, saved: DictConfig, prefix: str = "") -> None:
    """Set every trust_remote_code in `saved` to this invocation's value at the same key (off
    when absent): a checkpoint folder from elsewhere must not switch on code from the hub."""
    for key in list(saved.keys()):
        if key == "trust_remote_code":
            saved[key] = bool(OmegaConf.select(cfg, prefix + key, default=False))
        elif isinstance(saved[key], DictConfig):
            _trust_from_invocation(cfg, saved[key], f"{prefix}{key}.")


def check_audio(path: str) -> None:
    """Fail with one line before anything is loaded when `path` is not a readable audio file."""
    import soundfile as sf

    if not Path(path).exists():
        raise UserError(f"audio file {path} does not exist")
    if Path(path).is_dir():
        raise UserError(f"audio={path} is a folder, not an audio file")
    try:
        sf.info(path)
    except RuntimeError as err:  # soundfile's LibsndfileError: unknown format, truncated header
        raise UserError(f"cannot read {path} as audio: {str(err).splitlines()[0]}") from None


class Responder:
    """A checkpoint (and its vocoder) loaded once, answering any number of questions."""

    def __init__(self, cfg: DictConfig, device: str = "cpu", speak: bool = True):
        last = find_checkpoint(cfg)
        self.vocoder = None  # loaded first: a missing or unpinned vocoder fails before the big model loads
        settings = vocoder_settings(cfg, last) if speak else None
        if settings is not None:
            from .vocoder import load_vocoder

            self.vocoder = load_vocoder(settings).to(device)
        self.model, self.builder, self.checkpoint = load(cfg, device, last)
        self.device, self.omega = device, int(cfg.infer.omega)
        self.max_new_tokens = int(cfg.infer.max_new_tokens)
        if self.vocoder is not None and self.model.decoder.units > self.vocoder.dict.num_embeddings:
            raise UserError(f"the speech decoder emits {self.model.decoder.units} units but the vocoder takes "
                            f"{self.vocoder.dict.num_embeddings} (train.vocoder / infer.vocoder_path)")

    def answer(self, samples: np.ndarray, emit=None) -> Answer:
        """Text, units and speech for 16 kHz samples; `emit` receives each unit chunk when final."""
        model = self.model
        if len(samples) > 30 * audio_io.SAMPLE_RATE:
            log.warning("the question is longer than 30 s; Whisper hears only the first 30 s")
        feats = torch.from_numpy(audio_io.log_mel(samples, model.encoder.config.num_mel_bins))[None].to(self.device)
        prompt = torch.tensor([self.builder.prompt_ids], device=self.device)
        pieces: list[np.ndarray] = []
        first: list[float] = []
        start = time.perf_counter()

        def on_chunk(chunk: list[int]) -> None:
            if emit is not None:
                emit(chunk)
            if self.vocoder is not None:
                pieces.append(self.vocoder.synthesize(chunk))
                if not first:
                    first.append(time.perf_counter() - start)

        streamer = UnitStreamer(self.omega, on_chunk)
        units: list[int] = []  # the latest greedy decode; the last callback saw every state

        def on_state(tokens, states):
            units[:] = greedy_units(model.unit_logits(states), model.decoder.blank)
            streamer.update(units)

        tokens, _ = model.generate(prompt, feats, self.builder.eot, self.max_new_tokens, on_state)
        streamer.finish(units)
        text = self.builder.tokenizer.decode(tokens, skip_special_tokens=True)
        speech = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return Answer(text, list(units), speech, first[0] if first else None, time.perf_counter() - start)


def device_of(cfg: DictConfig) -> str:
    return "cuda" if (cfg.device == "auto" and torch.cuda.is_available()) or cfg.device == "cuda" else "cpu"


def answer(cfg: DictConfig, audio_path: str, emit=print, device: str = "cpu") -> Answer:
    """Load the checkpoint and answer one audio file; `emit` receives each unit chunk."""
    check_audio(audio_path)
    return Responder(cfg, device).answer(audio_io.read_file(audio_path), emit)


def check_output(path: str) -> None:
    """Fail with one line before anything is loaded when the answer cannot be written to `path`."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"output={path} is a folder; give a file name ending in .wav")
    if target.suffix.lower() != ".wav":
        raise UserError(f"output={path}: the spoken answer is written as a .wav file")
    if not target.parent.is_dir():
        raise UserError(f"output={path}: folder {target.parent} does not exist")


def _run(cfg: DictConfig) -> None:
    if not cfg.audio:
        raise UserError("audio is required: python -m omni.infer data_root=DIR audio=FILE.wav")
    if cfg.output:
        check_output(str(cfg.output))
    result = answer(cfg, str(cfg.audio), emit=lambda c: print("chunk:", " ".join(map(str, c)), flush=True),
                    device=device_of(cfg))
    print("text:", result.text)
    print("units:", " ".join(map(str, result.units)))
    if result.first_audio_s is not None:
        print(f"first audio chunk after {result.first_audio_s * 1000:.0f} ms "
              f"(omega={cfg.infer.omega}); {len(result.audio) / audio_io.SAMPLE_RATE:.2f} s of speech")
    if cfg.output:
        import soundfile as sf

        sf.write(str(cfg.output), result.audio, audio_io.SAMPLE_RATE, subtype="PCM_16")
        print("speech:", cfg.output)


def main(argv: list[str] | None = None) -> None:
    command_line(_run, __doc__, argv)


if __name__ == "__main__":
    main()
