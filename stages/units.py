"""units: speech -> discrete speech tokens, one per frame -> runs of the same token merged.

Two tokenizers (`tokenizer`):
- hubert_kmeans: HuBERT layer features -> nearest k-means centroid per 20 ms frame. The recipe:
  mHuBERT base, layer 11, 1000 fairseq centroids. The centroids come either from a converted
  recipe file (`kmeans.fit=false`) or from MiniBatchKMeans fitted in `prepare()` on a seeded
  sample of this run's own features (the local default), cached under ${data_root}/cache/kmeans/.
- cosyvoice2: CosyVoice 2's supervised S3 tokenizer (25 frames a second, 6561 tokens); its rows
  also carry the vocabulary size, frame rate and model identity.

Only verified audio gets units: the stage reads the speak stage's audio joined with the verify
stage's surviving ids (with `verify_stage: null`, every clip of the speak stage).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import ConfigError, InfrastructureError, ItemFailure, MissingModelError
from pipeline.fingerprint import digest, output_settings
from pipeline.shard_progress import advance
from pipeline.shards import Layout, file_sha256
from pipeline.stage import Stage, StageSettings
from stages import audio
from stages.kmeans import UnitAssigner, fit_centroids, load_centroids, merge_repeats, save_centroids

TOKENIZERS = ("hubert_kmeans", "cosyvoice2")

log = logging.getLogger(__name__)

RATE = 16_000
# Padded seconds per forward pass when batch_seconds is unset, by device type. Measured with
# `python -m benchmarks.units` (random HuBERT-base, recipe-length clips): on an H200 in fp32,
# batches of 240 s ran 1.30x faster than one clip at a time (120 s: 1.29x); on a 2-core CPU
# batches are slower (60 s: 0.65x), as the work is compute-bound and padding adds to it.
AUTO_BATCH_SECONDS = {"cuda": 240.0}


@dataclass
class KMeansSettings:
    fit: bool = True  # fit on a sample of this run's features; false: load `centroids`
    k: int = 100  # clusters when fitting (the recipe's converted file has 1000)
    centroids: str | None = None  # .npy [k, hidden] used when fit=false (scripts/convert_kmeans.py)
    centroids_sha256: str | None = None  # pin for that file; null: not checked
    sample_items: int = 500  # items drawn (seeded) across all shards to fit on
    max_sample_frames: int = 200_000  # frames kept for fitting (seeded subsample beyond this)
    batch_size: int = 4096  # MiniBatchKMeans batch size
    max_iter: int = 100  # MiniBatchKMeans passes over the sample
    n_init: int = 3  # MiniBatchKMeans initializations; the best one is kept


@dataclass
class CosyVoice2Settings:
    checkpoint: str | None = None  # speech_tokenizer_v2.onnx or a torch.save state dict (.pt); null: seeded random weights
    checkpoint_sha256: str | None = None  # required with a checkpoint


@dataclass
class UnitsSettings(StageSettings):
    kind: str = "units"
    tokenizer: str = "hubert_kmeans"  # hubert_kmeans | cosyvoice2
    speak_stage: str = "speak_response"  # stage whose audio is turned into units
    audio_column: str = "audio"  # the speak stage's column holding the clip
    verify_stage: str | None = "verify_response"  # only ids that survived this stage get units; null: every clip
    checkpoint: str | None = None  # fairseq HuBERT .pt path or URL; null: seeded random HuBERT-base
    checkpoint_sha256: str | None = None  # required with a checkpoint
    checkpoint_safe_globals: list[str] = field(default_factory=list)  # extra classes torch.load may build
    layer: int = 11  # transformer layer (1-based) whose output is clustered
    min_seconds: float = 0.1  # shorter clips are ledgered (too_short)
    max_seconds: float | None = 120.0  # longer clips are ledgered (too_long); bounds attention memory
    kmeans: KMeansSettings = field(default_factory=KMeansSettings)
    cosyvoice2: CosyVoice2Settings = field(default_factory=CosyVoice2Settings)
    device: str = "auto"  # cpu | cuda | auto
    precision: str = "fp32"  # HuBERT arithmetic: fp32 (exact; batches equal single clips) | tf32 | bf16 (CUDA only, faster, a few units differ)
    batch_seconds: float | None = None  # padded audio seconds per forward pass; None: AUTO_BATCH_SECONDS
    threads: int = 2  # CPU threads (torch, OpenMP, BLAS) of HuBERT and k-means; changes float rounding
    decode_threads: int = 4  # threads per worker decoding the stored audio before each forward pass

    # `threads` is not among them: the thread count splits HuBERT's float sums differently, so it
    # changes features, centroids and units (see pinned_threads).
    RUNTIME_FIELDS: ClassVar[frozenset[str]] = StageSettings.RUNTIME_FIELDS | frozenset({"device", "batch_seconds", "decode_threads"})
    OMIT_WHEN_DEFAULT: ClassVar[frozenset[str]] = frozenset({"tokenizer", "audio_column"})

    def inactive_fields(self) -> frozenset[str]:
        # The other tokenizer's settings change nothing: builds from before the choice keep their fingerprints.
        return super().inactive_fields() | ({"cosyvoice2"} if self.tokenizer == "hubert_kmeans" else set())

    def __post_init__(self):
        super().__post_init__()
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1 (the CPU threads units computes with), got {self.threads}")
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {self.tokenizer!r}")


@contextlib.contextmanager
def pinned_threads(threads: int):
    """Run the block with exactly `threads` threads in torch and in every OpenMP and BLAS pool
    (scikit-learn's k-means, numpy), then put back what was there.

    The thread count changes HuBERT's features in the last bits (float sums are split across
    threads), and with them the fitted centroids and some units, so it is a setting, not
    whatever the process holds. That depends on what ran before in the process: CTranslate2's
    Whisper (the verify stages) sets OpenMP's count to its `cpu_threads` as it loads, and when
    torch was loaded first (vLLM's stages ran in the same process) the call lands in torch's
    OpenMP runtime. A straight build computed units with 1 thread, a resumed one (LLM stages
    skipped) or a units-only run with torch's default. Pinned around each computation, not once
    in setup(): other stages may run in between, and the count is per OS thread.
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    with threadpool_limits(limits=threads):
        torch.set_num_threads(threads)
        try:
            if torch.get_num_threads() != threads:  # vLLM's CPU worker makes the call a no-op where it runs
                raise InfrastructureError(f"units: torch would not use {threads} threads "
                                          f"(it uses {torch.get_num_threads()}); its units would not be reproducible")
            yield
        finally:
            torch.set_num_threads(before)


class UnitsStage(Stage):
    Settings: ClassVar = UnitsSettings
    version: ClassVar[str] = "1"

    def input_columns(self) -> dict[str, list[str]]:
        s = self.settings
        columns = {s.speak_stage: [s.audio_column]}
        if s.verify_stage:
            columns[s.verify_stage] = []
        return columns

    def output_schema(self) -> pa.Schema:
        fields = [("id", pa.string()), ("units", pa.list_(pa.int16())),
                  ("unit_frames", pa.int32()), ("units_per_second", pa.float32())]
        if self.settings.tokenizer == "cosyvoice2":
            fields += [("unit_vocab_size", pa.int32()), ("unit_rate_hz", pa.float32()), ("unit_model", pa.string())]
        return pa.schema(fields)

    # -- model and centroids ------------------------------------------------------------------
    def load_hubert(self):
        from stages.engines.hubert import HubertFeatures, HubertSpec

        s = self.settings
        spec = HubertSpec(checkpoint=s.checkpoint, checkpoint_sha256=s.checkpoint_sha256,
                          safe_globals=tuple(s.checkpoint_safe_globals), layer=s.layer,
                          seed=self.context["seed"], device=s.device, precision=s.precision)
        with pinned_threads(s.threads):
            return HubertFeatures(spec, self.context.get("model_cache", "."))

    def load_s3(self):
        from stages.engines.s3_tokenizer import S3Spec, S3Tokenizer

        s = self.settings
        spec = S3Spec(checkpoint=s.cosyvoice2.checkpoint, checkpoint_sha256=s.cosyvoice2.checkpoint_sha256,
                      seed=self.context["seed"], device=s.device)
        with pinned_threads(s.threads):
            return S3Tokenizer(spec)

    def setup(self) -> None:
        if self.settings.tokenizer == "cosyvoice2":
            self.s3 = self.load_s3()
            return
        self.hubert = self.load_hubert()
        km, prepared = self.settings.kmeans, self.context.get("prepared") or {}
        if km.fit:
            if not prepared.get("file"):
                self.assign = None  # nothing to fit on: there are no items either
                return
            path = Path(self.context["data_root"]) / prepared["file"]
            centroids, _ = load_centroids(path, prepared["centroids_sha256"])
        else:
            centroids, _ = load_centroids(Path(km.centroids).expanduser(), km.centroids_sha256)
        if centroids.shape[1] != self.hubert.hidden_size:
            raise ValueError(f"centroids have dim {centroids.shape[1]}, HuBERT features {self.hubert.hidden_size}")
        self.assign = UnitAssigner(centroids, self.hubert.device)

    def engine_versions(self) -> dict[str, str]:
        if hasattr(self, "s3"):
            return {"s3_tokenizer": self.s3.identity, "s3tokenizer": metadata.version("s3tokenizer"),
                    "torch": metadata.version("torch")}
        if not hasattr(self, "hubert"):
            return {}
        km, prepared = self.settings.kmeans, self.context.get("prepared") or {}
        sha = prepared.get("centroids_sha256", "")
        source = f"fitted on this run, seed {self.context['seed']}" if km.fit else Path(km.centroids).name
        return {
            "hubert": self.hubert.identity,
            "hubert_layer": str(self.settings.layer),
            "hubert_precision": self.settings.precision,
            "kmeans": f"k={prepared.get('k', km.k)} {source} sha256:{sha}",
            "transformers": metadata.version("transformers"),
            "torch": metadata.version("torch"),
        }

    def check(self) -> None:
        """Before any stage of the build runs (the units stage comes last, hours later): the
        checkpoint's pin and the converted centroids, which only the user can supply."""
        from stages.engines.hubert import cached_checkpoint

        s, km, key = self.settings, self.settings.kmeans, f"stages.{self.name}"
        if s.tokenizer == "cosyvoice2":
            self.check_s3()
            return
        if s.checkpoint and not s.checkpoint_sha256:
            path = cached_checkpoint(s.checkpoint, self.context.get("model_cache", "."))
            if path.is_file():
                raise MissingModelError(f"{key}.checkpoint_sha256 is not set; {path} has sha256 "
                                        f"{file_sha256(path)}: check it against a trusted source, then set it")
            raise MissingModelError(f"{key}.checkpoint_sha256 is not set; download {s.checkpoint} to {path}, "
                                    "check its sha256 against a trusted source, then set it")
        if not km.fit:
            self.check_centroids()

    def check_s3(self) -> None:
        """The released tokenizer file: there, in a released format, matching its pin."""
        from stages.engines.s3_tokenizer import check_checkpoint

        cv2, key = self.settings.cosyvoice2, f"stages.{self.name}.cosyvoice2"
        if self.settings.precision != "fp32":
            raise ConfigError(f"stages.{self.name}.precision={self.settings.precision}: the cosyvoice2 tokenizer runs in fp32")
        if not cv2.checkpoint:
            return
        path = Path(cv2.checkpoint).expanduser()
        if not path.is_file():
            raise MissingModelError(f"{key}.checkpoint {path} not found; download CosyVoice2-0.5B's "
                                    "speech_tokenizer_v2.onnx there, or set it to null for random weights")
        if not cv2.checkpoint_sha256:
            raise MissingModelError(f"{key}.checkpoint_sha256 is not set; {path} has sha256 {file_sha256(path)}: "
                                    "check it against a trusted source, then set it")
        try:
            check_checkpoint(path, cv2.checkpoint_sha256)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None

    def check_centroids(self) -> None:
        km = self.settings.kmeans
        if not km.centroids:
            raise ConfigError(f"stages.{self.name}.kmeans.fit=false needs kmeans.centroids (a .npy file)")
        if not Path(km.centroids).expanduser().is_file():
            raise MissingModelError(f"k-means centroids {km.centroids} not found; make them from fairseq's .bin "
                                    f"with scripts/convert_kmeans.py, or set stages.{self.name}.kmeans.fit=true")

    def prepare(self, input_shards: dict[str, list[str]]) -> dict[str, Any]:
        if self.settings.tokenizer == "cosyvoice2":
            return {}  # nothing fitted: the tokenizer is the model
        self.check_precision()
        km = self.settings.kmeans
        if not km.fit:
            self.check_centroids()
            centroids, sha = load_centroids(Path(km.centroids).expanduser(), km.centroids_sha256)
            return {"centroids_sha256": sha, "k": len(centroids)}
        return self.fit_on_sample(input_shards)

    def check_precision(self) -> None:
        import torch

        from stages.engines.hubert import PRECISIONS

        s = self.settings
        if s.precision not in PRECISIONS:
            raise ConfigError(f"stages.{self.name}.precision must be one of {', '.join(PRECISIONS)}, got {s.precision!r}")
        cuda = s.device.startswith("cuda") or (s.device == "auto" and torch.cuda.is_available())
        if s.precision != "fp32" and not cuda:
            raise ConfigError(f"stages.{self.name}.precision={s.precision} needs a CUDA device (device={s.device}); "
                              "use fp32 on CPU")

    def fit_on_sample(self, input_shards: dict[str, list[str]]) -> dict[str, Any]:
        s, km, seed = self.settings, self.settings.kmeans, self.context["seed"]
        layout = Layout(self.context["data_root"])
        items = verified_items(input_shards[s.speak_stage], input_shards[s.verify_stage] if s.verify_stage else None)
        if not items:
            return {"file": None, "k": km.k}
        rng = np.random.default_rng(seed)
        picked = sorted(rng.choice(len(items), size=min(km.sample_items, len(items)), replace=False))
        sample = [items[i] for i in picked]
        upstream = sorted(load_fingerprint(layout, s.speak_stage, shard) for shard in {shard for shard, _ in sample})
        # Every setting that can change the sampled features or the fit (threads, precision,
        # min_seconds, the checkpoint, the k-means settings...): those of the shard fingerprint.
        settings = output_settings(s)
        settings["kmeans"] = {k: v for k, v in dataclasses.asdict(km).items()
                              if k not in ("centroids", "centroids_sha256")}
        key = digest({"settings": settings, "seed": seed, "upstream": upstream, "sample": [i for _, i in sample]})
        path = layout.cache_dir("kmeans") / f"{self.name}-{key}.npy"
        relative = path.relative_to(layout.root).as_posix()  # in the fingerprint: relative, so a moved data_root resumes
        if path.exists():
            _, sha = load_centroids(path)
            log.info("%s: reusing k-means centroids %s", self.name, relative)
        else:
            with pinned_threads(s.threads):
                features = self.sample_features(input_shards[s.speak_stage], sample, rng)
                if len(features) < km.k:
                    raise ConfigError(f"{self.name}: k-means with k={km.k} needs at least {km.k} frames; this run's "
                                      f"sample has {len(features)}. Lower stages.{self.name}.kmeans.k or build more items.")
                log.info("%s: fitting k-means (k=%d) on %d frames of %d items", self.name, km.k, len(features), len(sample))
                centroids = fit_centroids(features, km.k, seed, km.batch_size, km.max_iter, km.n_init)
            sha = save_centroids(path, centroids)
        return {"file": relative, "centroids_sha256": sha, "k": km.k}

    def sample_features(self, speak_paths: list[str], sample: list[tuple[int, str]], rng) -> np.ndarray:
        by_shard: dict[int, list[str]] = {}
        for shard, item_id in sample:
            by_shard.setdefault(shard, []).append(item_id)
        waves = []
        for shard, ids in sorted(by_shard.items()):
            column = self.settings.audio_column
            table = pq.read_table(speak_paths[shard], columns=["id", column], filters=[("id", "in", ids)])
            for struct in table.column(column).to_pylist():
                try:
                    clip = load_clip(struct)
                except Exception:  # undecodable clips are ledgered by process(); skip them here
                    continue
                if len(clip) >= RATE * self.settings.min_seconds:
                    waves.append(clip)
        hubert = self.load_hubert()  # a local: the main process should not keep the model
        frames = np.concatenate([f.cpu().numpy() for f in extract(hubert, waves, self.settings.batch_seconds)])
        if len(frames) > self.settings.kmeans.max_sample_frames:
            keep = np.sort(rng.choice(len(frames), self.settings.kmeans.max_sample_frames, replace=False))
            frames = frames[keep]
        return frames

    # -- items ----------------------------------------------------------------------------------
    def process(self, rows: list[dict]) -> list[dict | ItemFailure]:
        s = self.settings
        if s.tokenizer == "hubert_kmeans" and self.assign is None:
            raise InfrastructureError(f"{self.name}: no k-means centroids were prepared for this run")
        results: list[dict | ItemFailure | None] = [None] * len(rows)
        clips: dict[int, np.ndarray] = {}
        # Decoding is the stage's own CPU work; on a GPU it would otherwise rival the model's time.
        with ThreadPoolExecutor(max(1, s.decode_threads)) as pool:  # libsndfile and soxr release the GIL
            checked_rows = list(pool.map(self.checked_clip, rows))
        for position, checked in enumerate(checked_rows):
            if isinstance(checked, ItemFailure):
                results[position] = checked
            else:
                clips[position] = checked
        positions = list(clips)
        with pinned_threads(s.threads):
            if s.tokenizer == "cosyvoice2":
                assigned = extract(self.s3, [clips[p] for p in positions], s.batch_seconds, "tokens")
            else:
                features = extract(self.hubert, [clips[p] for p in positions], s.batch_seconds)
                assigned = [self.assign(frames) for frames in features]
        for position, frame_units in zip(positions, assigned):
            units = merge_repeats(frame_units)
            seconds = len(clips[position]) / RATE
            results[position] = {"id": rows[position]["id"], "units": units.tolist(),
                                 "unit_frames": len(frame_units), "units_per_second": len(units) / seconds}
            if s.tokenizer == "cosyvoice2":
                results[position].update(unit_vocab_size=self.s3.vocab_size, unit_rate_hz=self.s3.rate_hz,
                                         unit_model=self.s3.identity)
            self.count("frames", len(frame_units))
            self.count("units", len(units))
            self.count("audio_ms", round(seconds * 1000))
        return results  # type: ignore[return-value]

    def checked_clip(self, row: dict) -> np.ndarray | ItemFailure:
        s, item_id = self.settings, row["id"]
        try:
            clip = load_clip(row[s.audio_column])
        except Exception as exc:
            return self.fail(item_id, "corrupt_audio", f"{type(exc).__name__}: {exc}")
        seconds = len(clip) / RATE
        if clip.size == 0:
            return self.fail(item_id, "empty_audio")
        if seconds < s.min_seconds:
            return self.fail(item_id, "too_short", f"duration={seconds:.3f}s min={s.min_seconds}")
        if s.max_seconds is not None and seconds > s.max_seconds:
            return self.fail(item_id, "too_long", f"duration={seconds:.2f}s max={s.max_seconds}")
        return clip


def load_clip(struct: dict | None) -> np.ndarray:
    """HF Audio struct -> mono float32 at 16 kHz (empty when there are no bytes at all)."""
    data = (struct or {}).get("bytes")
    if not data:
        return np.zeros(0, dtype=np.float32)
    clip, rate = audio.decode(data)
    if not np.isfinite(clip).all():
        raise ValueError("audio has NaN or infinite samples")
    return audio.resample(clip, rate, RATE)


def extract(model, clips: list[np.ndarray], batch_seconds: float | None, method: str = "features") -> list:
    """`model.<method>` (HuBERT's features, the S3 tokenizer's tokens) of every clip, in order,
    computed in length-sorted padded batches (None: the device's AUTO_BATCH_SECONDS; 0: one clip
    per forward pass)."""
    from stages.engines.hubert import length_batches

    if batch_seconds is None:
        batch_seconds = AUTO_BATCH_SECONDS.get(model.device.type, 0.0)
    compute = getattr(model, method)
    out: list = [None] * len(clips)
    for batch in length_batches([len(c) for c in clips], int(batch_seconds * RATE)):
        for i, frames in zip(batch, compute([clips[i] for i in batch])):
            out[i] = frames
        advance(len(batch))  # the progress bar, between forward passes
    return out


def verified_items(speak_paths: list[str], verify_paths: list[str] | None) -> list[tuple[int, str]]:
    """(shard index, id) of every item with audio that passed verification (None: every item), in shard order."""
    items = []
    for shard, speak in enumerate(speak_paths):
        ids = pq.read_table(speak, columns=["id"]).column("id").to_pylist()
        if verify_paths is not None:
            kept = set(pq.read_table(verify_paths[shard], columns=["id"]).column("id").to_pylist())
            ids = [i for i in ids if i in kept]
        items += [(shard, i) for i in ids]
    return items


def load_fingerprint(layout: Layout, stage: str, shard: int) -> str:
    return json.loads(layout.shard_record(stage, shard).read_text())["fingerprint"]
