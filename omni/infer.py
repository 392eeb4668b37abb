"""Answer one spoken question with the latest checkpoint of a run.

    python -m omni.infer data_root=DIR audio=question.wav [infer.omega=10] [run_name=local]

Prints each chunk of `omega` units as soon as it is final ("chunk: 12 873 4 ..."), then the
text response ("text: ...") and the whole unit sequence ("units: ..."). Units come from greedy
CTC (per-frame argmax, repeats merged, blanks dropped) over the speech decoder's output for the
states h(y_1..y_i) of the tokens generated so far (see omni/model.py for the alignment).

The model is rebuilt from the config saved in the checkpoint, except `trust_remote_code`: that
comes from this command line (off unless given), never from a checkpoint folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import audio as audio_io
from . import checkpoint as ckpt
from .build import build_model, load_tokenizer
from .config import UserError, command_line, run_dir
from .ctc import UnitStreamer, greedy_units
from .prompt import PromptBuilder

log = logging.getLogger("omni.infer")


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


def load(cfg: DictConfig, device: str = "cpu"):
    """(model, prompt builder, checkpoint) rebuilt from the checkpoint's own config."""
    last = find_checkpoint(cfg)
    saved = last.path / "config.yaml"
    tcfg = cfg
    if saved.exists():
        tcfg = OmegaConf.load(saved)
        _trust_from_invocation(cfg, tcfg)
    tokenizer = load_tokenizer(tcfg.train.tokenizer)
    model = build_model(tcfg.train, tokenizer, seed=int(tcfg.seed), pretrained=False)
    model.load_state_dict(ckpt.load_weights(last.path / "model.safetensors"))
    model.set_stage(2)
    model.to(device).eval()
    d = tcfg.data
    builder = PromptBuilder(tokenizer, d.system_prompt, d.instruction, model.speech_slots,
                            d.speech_placeholder, tcfg.train.tokenizer.end_of_turn)
    return model, builder, last


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


def answer(cfg: DictConfig, audio_path: str, emit=print, device: str = "cpu"):
    """Generate the text and units for one audio file; `emit` receives each unit chunk."""
    check_audio(audio_path)
    model, builder, _ = load(cfg, device)
    samples = audio_io.read_file(audio_path)
    if len(samples) > 30 * audio_io.SAMPLE_RATE:
        log.warning("%s is longer than 30 s; Whisper hears only the first 30 s", audio_path)
    feats = torch.from_numpy(audio_io.log_mel(samples, model.encoder.config.num_mel_bins))[None].to(device)
    prompt = torch.tensor([builder.prompt_ids], device=device)
    blank = model.decoder.blank
    streamer = UnitStreamer(int(cfg.infer.omega), emit)
    units: list[int] = []  # the latest greedy decode; the last callback saw every state

    def on_state(tokens, states):
        units[:] = greedy_units(model.unit_logits(states), blank)
        streamer.update(units)

    tokens, _ = model.generate(prompt, feats, builder.eot, int(cfg.infer.max_new_tokens), on_state)
    streamer.finish(units)
    text = builder.tokenizer.decode(tokens, skip_special_tokens=True)
    return text, units


def _run(cfg: DictConfig) -> None:
    if not cfg.audio:
        raise UserError("audio is required: python -m omni.infer data_root=DIR audio=FILE.wav")
    device = "cuda" if (cfg.device == "auto" and torch.cuda.is_available()) or cfg.device == "cuda" else "cpu"
    text, units = answer(cfg, str(cfg.audio), emit=lambda c: print("chunk:", " ".join(map(str, c)), flush=True),
                         device=device)
    print("text:", text)
    print("units:", " ".join(map(str, units)))


def main(argv: list[str] | None = None) -> None:
    command_line(_run, __doc__, argv)


if __name__ == "__main__":
    main()
