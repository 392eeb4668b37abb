"""The unit vocoder: HuBERT units -> 16 kHz speech, as LLaMA-Omni speaks.

fairseq's unit HiFi-GAN with a duration predictor, the architecture of the released
`mhubert_vp_en_es_fr_it3_400k_layer11_km1000_lj` vocoder (1000 mHuBERT layer-11 units, LJSpeech):

    units [T] -> embedding `dict` [T, 128]
      -> `dur_predictor` (2 x conv+ReLU+LayerNorm, linear): log(1 + frames) per unit;
         frames = max(1, round(exp(.) - 1)), each unit repeated that many times
      -> HiFi-GAN generator: `conv_pre`, then per upsampling `ups.i` (transposed conv, x5 x4 x4 x2 x2)
         the mean of `resblocks` with kernels 3/7/11 (three dilated+plain conv pairs each),
         `conv_post`, tanh
      -> sum(frames) * code_hop_size (320) samples at 16 kHz

The released layout is a folder with `config.json` (the training config; the generator fields are
read) and a generator checkpoint (`g_00500000`: {"generator": state_dict}, fairseq's parameter
names, weight norm stored as `weight_g` / `weight_v`). The convolutions use torch's weight-norm
parametrization; state_dict() gives, and load_state_dict() takes, the released names.

    load_vocoder(settings)                -> UnitVocoder (settings: the `train.vocoder` block; a
                                             missing folder is downloaded from `url`, except
                                             under HF_HUB_OFFLINE=1)
    UnitVocoder.synthesize(units)         -> float32 numpy speech at `sample_rate`
    save_released_format(vocoder, folder) -> the folder, in the released layout
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import os
import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from pipeline.shards import atomic_write_bytes, file_sha256

from .config import UserError

log = logging.getLogger("omni.vocoder")

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "g_00500000"  # the released generator checkpoint's name
LRELU_SLOPE = 0.1  # HiFi-GAN's leaky ReLU slope inside the generator (the last one uses torch's 0.01)

# config.json fields the generator is built from (the released file also holds training settings).
FIELDS = ("resblock", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel",
          "resblock_kernel_sizes", "resblock_dilation_sizes", "num_embeddings", "embedding_dim",
          "model_in_dim", "dur_predictor_params", "code_hop_size", "sampling_rate")
DURATION_FIELDS = ("encoder_embed_dim", "var_pred_hidden_dim", "var_pred_kernel_size", "var_pred_dropout")
# Inputs of other fairseq unit vocoders (speakers, styles, pitch) that LLaMA-Omni's does not take.
CONDITIONING = ("multispkr", "embedder_params", "multistyle", "f0", "f0_quant_num_bin", "num_style_tokens")

_PARAMETRIZED = re.compile(r"\.parametrizations\.weight\.original([01])$")


def generator_config(raw: Mapping, source: str) -> dict:
    """The generator fields of a vocoder config, checked for a shape this module can build."""
    missing = [k for k in FIELDS if k not in raw]
    if missing:
        raise UserError(f"{source}: missing {', '.join(missing)} (fields of a unit HiFi-GAN config.json)")
    taken = [k for k in CONDITIONING if raw.get(k)]
    if taken:
        raise UserError(f"{source}: {', '.join(taken)} set; only vocoders of units alone are supported "
                        "(no speaker, style or pitch inputs)")
    cfg = {k: raw[k] for k in FIELDS}
    dur = cfg["dur_predictor_params"] or {}
    if any(k not in dur for k in DURATION_FIELDS):
        raise UserError(f"{source}: dur_predictor_params needs {', '.join(DURATION_FIELDS)} "
                        "(LLaMA-Omni's units have repeats merged; the vocoder predicts their durations)")
    cfg["dur_predictor_params"] = {k: dur[k] for k in DURATION_FIELDS}
    rates, kernels = list(cfg["upsample_rates"]), list(cfg["upsample_kernel_sizes"])
    problems = [
        (str(cfg["resblock"]) != "1", "resblock must be \"1\" (fairseq's unit vocoders use HiFi-GAN's type-1 block)"),
        (len(rates) != len(kernels), "upsample_rates and upsample_kernel_sizes differ in length"),
        (any((k - r) % 2 for r, k in zip(rates, kernels)), "each upsample kernel minus its rate must be even"),
        (math.prod(rates) != cfg["code_hop_size"], "the product of upsample_rates must equal code_hop_size"),
        (cfg["upsample_initial_channel"] % 2 ** len(rates) != 0,
         "upsample_initial_channel must halve evenly once per upsampling"),
        (len(cfg["resblock_kernel_sizes"]) != len(cfg["resblock_dilation_sizes"]),
         "resblock_kernel_sizes and resblock_dilation_sizes differ in length"),
        (not cfg["model_in_dim"] == cfg["embedding_dim"] == dur["encoder_embed_dim"],
         "model_in_dim, embedding_dim and dur_predictor_params.encoder_embed_dim must be equal"),
        (dur["var_pred_kernel_size"] % 2 == 0, "dur_predictor_params.var_pred_kernel_size must be odd"),
    ]
    wrong = [why for bad, why in problems if bad]
    if wrong:
        raise UserError(f"{source}: {wrong[0]}")
    return cfg


def _normed(conv: nn.Module) -> nn.Module:
    return weight_norm(conv)  # dim 0, as fairseq's; loads weight_g/weight_v state dicts itself


def _released_names(module, state_dict, prefix, local_metadata) -> None:
    """state_dict post-hook: parametrizations.weight.original0/1 -> weight_g/weight_v, in place."""
    items = list(state_dict.items())
    state_dict.clear()
    for key, value in items:
        found = _PARAMETRIZED.search(key) if key.startswith(prefix) else None
        if found:
            key = key[:found.start()] + (".weight_g" if found.group(1) == "0" else ".weight_v")
        state_dict[key] = value


class ResidualBlock(nn.Module):
    """HiFi-GAN's type-1 block: pairs of (dilated conv, plain conv), each pair a residual branch."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            _normed(nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2))
            for d in dilations)
        self.convs2 = nn.ModuleList(
            _normed(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2)) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2):
            branch = dilated(F.leaky_relu(x, LRELU_SLOPE))
            x = x + plain(F.leaky_relu(branch, LRELU_SLOPE))
        return x


class DurationPredictor(nn.Module):
    """Unit embeddings [B, T, C] -> log(1 + frames) [B, T] (fairseq's VariancePredictor layout)."""

    def __init__(self, dim: int, hidden: int, kernel: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv1d(dim, hidden, kernel, padding=(kernel - 1) // 2), nn.ReLU())
        self.ln1 = nn.LayerNorm(hidden)
        self.conv2 = nn.Sequential(nn.Conv1d(hidden, hidden, kernel, padding=(kernel - 1) // 2), nn.ReLU())
        self.ln2 = nn.LayerNorm(hidden)
        self.proj = nn.Linear(hidden, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.ln1(self.conv1(x.transpose(1, 2)).transpose(1, 2)))
        x = self.dropout(self.ln2(self.conv2(x.transpose(1, 2)).transpose(1, 2)))
        return self.proj(x).squeeze(-1)


class UnitVocoder(nn.Module):
    """Units -> speech. Submodule names are the released checkpoint's (`dict`, `dur_predictor`,
    `conv_pre`, `ups`, `resblocks`, `conv_post`)."""

    def __init__(self, config: Mapping, random_weights: bool = False, source: str = "vocoder config"):
        super().__init__()
        cfg = generator_config(config, source)
        self.config = cfg  # what save_released_format writes as config.json
        self.sample_rate = int(cfg["sampling_rate"])
        self.hop = int(cfg["code_hop_size"])
        self.random_weights = random_weights
        width, kernels = int(cfg["upsample_initial_channel"]), cfg["resblock_kernel_sizes"]
        self.conv_pre = _normed(nn.Conv1d(cfg["model_in_dim"], width, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(cfg["upsample_rates"], cfg["upsample_kernel_sizes"])):
            channels = width >> (i + 1)
            self.ups.append(_normed(nn.ConvTranspose1d(width >> i, channels, kernel, rate,
                                                       padding=(kernel - rate) // 2)))
            self.resblocks.extend(ResidualBlock(channels, k, d)
                                  for k, d in zip(kernels, cfg["resblock_dilation_sizes"]))
        self.conv_post = _normed(nn.Conv1d(width >> len(self.ups), 1, 7, padding=3))
        self.dict = nn.Embedding(cfg["num_embeddings"], cfg["embedding_dim"])
        dur = cfg["dur_predictor_params"]
        self.dur_predictor = DurationPredictor(dur["encoder_embed_dim"], dur["var_pred_hidden_dim"],
                                               dur["var_pred_kernel_size"], dur["var_pred_dropout"])
        self.register_state_dict_post_hook(_released_names)

    @property
    def device(self) -> torch.device:
        return self.dict.weight.device

    def _codes(self, units: Sequence[int]) -> torch.Tensor:
        codes = torch.as_tensor(np.asarray(units, dtype=np.int64), device=self.device).reshape(-1)
        if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= self.dict.num_embeddings):
            raise ValueError(f"units must lie in [0, {self.dict.num_embeddings}), "
                             f"got {int(codes.min())}..{int(codes.max())}")
        return codes

    def _frames(self, embedded: torch.Tensor) -> torch.Tensor:
        log_frames = self.dur_predictor(embedded[None])[0]
        return torch.clamp(torch.round(torch.exp(log_frames) - 1).long(), min=1)

    def durations(self, units: Sequence[int]) -> torch.Tensor:
        """Predicted frames per unit (each >= 1); the speech has sum * code_hop_size samples."""
        with torch.inference_mode():
            return self._frames(self.dict(self._codes(units)))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Unit ids [T] -> waveform [sum(frames) * hop]."""
        embedded = self.dict(codes)
        x = embedded.repeat_interleave(self._frames(embedded), dim=0).T[None]
        x = self.conv_pre(x)
        per_scale = len(self.resblocks) // len(self.ups)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * per_scale:(i + 1) * per_scale]
            total = blocks[0](x)
            for block in blocks[1:]:
                total = total + block(x)
            x = total / per_scale
        return torch.tanh(self.conv_post(F.leaky_relu(x)))[0, 0]

    def synthesize(self, units: Sequence[int]) -> np.ndarray:
        """Speech for `units` (durations predicted) as float32 at `sample_rate`; no units, no samples."""
        codes = self._codes(units)
        if not len(codes):
            return np.zeros(0, dtype=np.float32)
        self.eval()
        with torch.inference_mode(), parametrize.cached():  # each normed weight computed once per call
            return self(codes).float().cpu().numpy()


@functools.cache
def _warn_random() -> None:
    log.warning("train.vocoder.path is null: the unit vocoder has seeded random weights, its audio is noise")


def random_vocoder(config: Mapping, seed: int) -> UnitVocoder:
    """`config`'s shape with random weights drawn from `seed` (the caller's RNG state is kept)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vocoder = UnitVocoder(config, random_weights=True, source="train.vocoder.config")
    return vocoder.eval()


def load_released(folder: Path, checkpoint_file: str = CHECKPOINT_FILE, sha256: str | None = None) -> UnitVocoder:
    """A vocoder folder in the released layout; `sha256` pins the checkpoint file when given."""
    config_path, weights_path = folder / CONFIG_FILE, folder / checkpoint_file
    try:
        raw = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"train.vocoder: cannot read {config_path}: {_first_line(err)}") from None
    if not isinstance(raw, dict):
        raise UserError(f"train.vocoder: {config_path} is not a JSON object")
    if sha256:
        actual = _sha256(weights_path)
        if actual != sha256:
            raise UserError(f"train.vocoder: {weights_path} has sha256 {actual}, but {sha256} is pinned "
                            "(wrong or corrupt file)")
    try:
        checkpoint = torch.load(weights_path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise UserError(f"train.vocoder: cannot read {weights_path}: {_first_line(err)}") from None
    state = checkpoint.get("generator") if isinstance(checkpoint, dict) else None
    if not isinstance(state, Mapping):
        raise UserError(f"train.vocoder: {weights_path} has no `generator` state dict (not a unit HiFi-GAN checkpoint)")
    vocoder = UnitVocoder(raw, source=str(config_path))
    try:
        vocoder.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = _first_line(str(err).split(":", 1)[-1])
        raise UserError(f"train.vocoder: {weights_path} does not fit {config_path}: "
                        f"{detail[:300] + ('...' if len(detail) > 300 else '')}") from None
    return vocoder.eval()


def _offline() -> bool:
    """The project's offline switch (tests and the stand-in script set it): never download."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def fetch(path: str, checkpoint_file: str, url: str | None) -> Path:
    """The vocoder folder `path` (`~` expanded), its missing files downloaded from `url` first."""
    folder = Path(path).expanduser()
    missing = [name for name in (CONFIG_FILE, checkpoint_file) if not (folder / name).is_file()]
    if not missing:
        return folder
    what = " and ".join(missing)
    if not url:
        hint = ("a stand-in: make it with `python scripts/make_standins.py --only vocoder`" if "/standins/" in path
                else f"a released vocoder folder holds {CONFIG_FILE} and the generator checkpoint {checkpoint_file}")
        raise UserError(f"train.vocoder.path: {folder} has no {what} ({hint})")
    if _offline():
        raise UserError(f"train.vocoder: {folder} has no {what} and downloading is off (HF_HUB_OFFLINE); "
                        f"put {what} from {url} there")
    from torch.hub import download_url_to_file  # writes a temporary file, then moves it into place

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"train.vocoder.path: cannot create {folder}: {_first_line(err)}") from None
    for name in missing:
        source = f"{url.rstrip('/')}/{name}"
        log.info("downloading %s -> %s", source, folder / name)
        try:
            download_url_to_file(source, str(folder / name), progress=False)
        except OSError as err:  # URLError, HTTPError, timeouts
            raise UserError(f"train.vocoder: cannot download {source}: {_first_line(err)}") from None
    return folder


def load_vocoder(settings: Mapping | DictConfig) -> UnitVocoder:
    """The `train.vocoder` block -> a vocoder in eval mode on the CPU: the folder `path` (fetched from
    `url` when missing, `sha256` checked), or with `path` null `config`'s shape with weights seeded by
    `seed`."""
    s = OmegaConf.to_container(settings, resolve=True) if isinstance(settings, DictConfig) else dict(settings)
    if not s.get("path"):
        if not isinstance(s.get("config"), Mapping):
            raise UserError("train.vocoder.config is missing: with path null the vocoder is built from it")
        _warn_random()
        return random_vocoder(s["config"], int(s.get("seed") or 0))
    checkpoint_file = str(s.get("checkpoint_file") or CHECKPOINT_FILE)
    folder = fetch(str(s["path"]), checkpoint_file, s.get("url"))
    sha256 = s.get("sha256")
    if s.get("url") and not sha256:
        raise UserError(f"train.vocoder.sha256 is not set; {folder / checkpoint_file} has sha256 "
                        f"{_sha256(folder / checkpoint_file)}: check it against a trusted source, then set it")
    return load_released(folder, checkpoint_file, sha256)


def save_released_format(vocoder: UnitVocoder, folder: str | Path, checkpoint_file: str = CHECKPOINT_FILE) -> Path:
    """Write `config.json` and `checkpoint_file` ({"generator": state_dict}) into `folder`, each
    file replaced atomically; the checkpoint's bytes depend only on the weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = vocoder.state_dict()
    for name, tensor in state.items():
        state[name] = tensor.cpu()
    buffer = io.BytesIO()  # not a file name: torch.save names the archive after it
    torch.save({"generator": state}, buffer)
    atomic_write_bytes(folder / checkpoint_file, buffer.getvalue())
    atomic_write_bytes(folder / CONFIG_FILE, (json.dumps(vocoder.config, indent=2) + "\n").encode())
    return folder


def _sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as err:
        raise UserError(f"train.vocoder: cannot read {path}: {_first_line(err)}") from None


def _first_line(err: object) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
