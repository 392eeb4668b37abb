"""package: every stage's output joined into training rows, then (finalize) the train / validation /
test splits under ${data_root}/data/, the exports (stages/exports/), and the dataset card.

A row pairs the spoken instruction (what the model hears) with the text response and the
response's units (what it learns to say), plus the lineage needed to trust it: which models
wrote, spoke, checked and quantized it, the prompt hashes, and the fingerprint of the package
shard (equal to its ledger record's, which digests every upstream setting and input).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ledger import engine_versions
from pipeline.shard_progress import counted
from pipeline.shards import Layout, atomic_write_bytes, atomic_write_json
from pipeline.stage import Stage, StageSettings
from pipeline.steps import files_key, is_current, ledger_key, mark_done
from stages import audio
from stages.exports.settings import ExportSettings

log = logging.getLogger(__name__)

# What package reads, by role; `inputs` (conf/stages/package.yaml) names the stage playing each role.
# Both speak stages write `audio`, `speaker` and `engine`, both verify stages `wer` and the DNSMOS
# scores: the join renames them per side.
DNSMOS = ("dnsmos_p808", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")  # verify's speaker_embedding stays in its shard
ROLE_COLUMNS = {
    "source": ["source", "instruction"],
    "rewrite": ["instruction_spoken", "rewrite_meta", "meaning_similarity", "meaning_judge"],
    "respond": ["response", "respond_meta", "answer_similarity", "answer_judge"],
    "instruction_audio": {"audio": "instruction_audio", "speaker": "instruction_speaker",
                          "engine": "instruction_engine"},
    "instruction_check": {"wer": "instruction_wer", **{c: f"instruction_{c}" for c in DNSMOS}},
    "response_audio": {"audio": "response_audio", "speaker": "response_speaker", "engine": "response_engine"},
    "response_check": {"wer": "response_wer", **{c: f"response_{c}" for c in DNSMOS}},
    "units": ["units", "unit_frames", "units_per_second"],
}
FLAC_MAGIC = b"fLaC"
CARD_MODULES = ("package", "package_card", "package_dialogues", "package_dialogue_card", "package_plots",
                "package_stats")  # the code that makes the card and plots: a change there remakes them


@dataclass
class CardSettings:
    pretty_name: str = "InstructS2S (rebuilt)"  # title of the dataset card
    license: str = "cc-by-nc-4.0"  # Alpaca's license (the strictest source); check your sources' terms
    plots: bool = True  # PNG histograms under ${data_root}/plots/, linked from the card
    notice: Optional[str] = None  # a warning paragraph at the top of the card (e.g. a rehearsal's stand-ins); null: none


@dataclass
class HubSettings:
    repo_id: str | None = None  # e.g. user/instructs2s-rebuilt; null: no upload
    private: bool = True  # create the dataset repo as private
    token_env: str = "HF_TOKEN"  # environment variable holding the hub token


@dataclass
class PackageSettings(StageSettings):
    kind: str = "package"
    inputs: dict[str, str] = field(default_factory=dict)  # role -> upstream stage (the recipe's graph, in conf)
    sample_rate: int = 16000  # stored audio rate; other rates are resampled and re-encoded as FLAC
    max_instruction_seconds: float | None = 30.0  # the model hears 30 s at most; longer: ledgered
    max_response_seconds: float | None = None  # the recipe sets no bound; longer: ledgered
    splits: dict[str, float] = field(default_factory=lambda: {"validation": 0.02, "test": 0.02})  # by id hash
    rows_per_file: int = 1000  # rows per published Parquet file (about 0.5 GB at the recipe's clip lengths)
    rows_per_row_group: int = 100  # rows per Parquet row group; also what publishing holds in memory per split
    export: ExportSettings = field(default_factory=ExportSettings)
    card: CardSettings = field(default_factory=CardSettings)
    push_to_hub: HubSettings = field(default_factory=HubSettings)

    # splits, file sizes, export, card and upload only shape finalize()'s outputs, never a shard's rows;
    # `inputs` is wiring, covered by the fingerprints of the input shards.
    RUNTIME_FIELDS: ClassVar[frozenset[str]] = StageSettings.RUNTIME_FIELDS | frozenset(
        {"inputs", "splits", "rows_per_file", "rows_per_row_group", "export", "card", "push_to_hub"})

    ROLES: ClassVar[dict] = ROLE_COLUMNS  # role -> columns read from the stage playing it

    def __post_init__(self):
        super().__post_init__()
        missing = sorted(set(self.ROLES) - set(self.inputs))
        if missing:
            raise ValueError(f"inputs must name a stage for every role; missing {missing}")
        from stages.package_train import check_fractions

        check_fractions(self.splits)
        if self.rows_per_file < 1 or self.rows_per_row_group < 1:
            raise ValueError(f"rows_per_file and rows_per_row_group must be >= 1, got {self.rows_per_file}, "
                             f"{self.rows_per_row_group}")


def training_features(rate: int = 16000):
    """The training rows' Hugging Face features (their Arrow schema carries them as metadata)."""
    from datasets import Audio, Features, List, Value

    text, f32 = Value("string"), Value("float32")
    return Features({
        "id": text, "source": text, "instruction": text, "instruction_spoken": text, "response": text,
        "instruction_audio": Audio(sampling_rate=rate), "response_audio": Audio(sampling_rate=rate),
        "instruction_speaker": text, "response_speaker": text,
        "instruction_duration": f32, "response_duration": f32,
        "instruction_wer": f32, "response_wer": f32,
        **{f"{side}_{c}": f32 for side in ("instruction", "response") for c in DNSMOS},
        "response_units": List(Value("int16")), "response_unit_frames": Value("int32"),
        "response_units_per_second": f32,
        "rewrite_model": text, "rewrite_prompt_hash": text, "respond_model": text, "respond_prompt_hash": text,
        "meaning_similarity": f32, "meaning_judge": Value("int8"), "answer_similarity": f32, "answer_judge": Value("int8"),
        "instruction_tts": text, "response_tts": text, "asr_model": text, "units_model": text,
        "config_fingerprint": text,
    })


def model_name(meta_json: str | None) -> tuple[str, str]:
    """(model[@revision], prompt hash) from an LLM stage's meta JSON."""
    try:
        meta = json.loads(meta_json or "{}")
    except json.JSONDecodeError:
        meta = {}
    model = str(meta.get("model", ""))
    if meta.get("revision"):
        model += f"@{meta['revision']}"
    return model, str(meta.get("prompt_hash", ""))


def card_code_digest() -> str:
    import hashlib
    from pathlib import Path

    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / f"{m}.py").read_bytes() for m in CARD_MODULES)).hexdigest()


class PackageStage(Stage):
    Settings: ClassVar = PackageSettings
    version: ClassVar[str] = "1"

    def input_columns(self) -> dict[str, list[str] | dict[str, str]]:
        return {self.settings.inputs[role]: columns for role, columns in self.settings.ROLES.items()}

    def features(self):
        return training_features(self.settings.sample_rate)

    def output_schema(self) -> pa.Schema:
        return self.features().arrow_schema

    def setup(self) -> None:
        self.lineage = (self.context.get("prepared") or {}).get("lineage", {})  # in a worker, from prepare()

    LINEAGE_ROLES: ClassVar[tuple[str, ...]] = (
        "instruction_audio", "response_audio", "instruction_check", "response_check", "units")

    def prepare(self, input_shards: dict[str, list[str]]) -> dict[str, Any]:
        """Engine versions of the stages in LINEAGE_ROLES, from the engine: the same for every row of a run."""
        stages = sorted(self.settings.inputs[role] for role in self.LINEAGE_ROLES)
        return {"lineage": {stage: self.lineage.get(stage, {}) for stage in stages}}

    # -- rows ---------------------------------------------------------------------------------
    def process(self, rows: list[dict]) -> list:
        return [self.package_one(row) for row in counted(rows)]

    def checked_sides(self, item_id: str, row: dict):
        """((instruction audio, seconds), (response audio, seconds)) of a row with units, or its failure."""
        s = self.settings
        instruction = self.checked_audio(item_id, "instruction", row["instruction_audio"], s.max_instruction_seconds)
        if not isinstance(instruction, tuple):
            return instruction
        response = self.checked_audio(item_id, "response", row["response_audio"], s.max_response_seconds)
        if not isinstance(response, tuple):
            return response
        if not row["units"]:
            return self.fail(item_id, "no_units")
        return instruction, response

    def package_one(self, row: dict):
        item_id = row["id"]
        sides = self.checked_sides(item_id, row)
        if not isinstance(sides, tuple):
            return sides
        instruction, response = sides
        rewrite_model, rewrite_hash = model_name(row["rewrite_meta"])
        respond_model, respond_hash = model_name(row["respond_meta"])
        self.count("instruction_ms", round(instruction[1] * 1000))
        self.count("response_ms", round(response[1] * 1000))
        return {
            "id": item_id, "source": row["source"], "instruction": row["instruction"],
            "instruction_spoken": row["instruction_spoken"], "response": row["response"],
            "instruction_audio": instruction[0], "response_audio": response[0],
            "instruction_speaker": row["instruction_speaker"], "response_speaker": row["response_speaker"],
            "instruction_duration": instruction[1], "response_duration": response[1],
            "instruction_wer": row["instruction_wer"], "response_wer": row["response_wer"],
            **{f"{side}_{c}": row[f"{side}_{c}"] for side in ("instruction", "response") for c in DNSMOS},
            "response_units": row["units"], "response_unit_frames": row["unit_frames"],
            "response_units_per_second": row["units_per_second"],
            "rewrite_model": rewrite_model, "rewrite_prompt_hash": rewrite_hash,
            "respond_model": respond_model, "respond_prompt_hash": respond_hash,
            **{k: row[k] for k in ("meaning_similarity", "meaning_judge", "answer_similarity", "answer_judge")},
            "instruction_tts": self.voice_version("instruction_audio", row["instruction_speaker"],
                                                  row["instruction_engine"]),
            "response_tts": self.voice_version("response_audio", row["response_speaker"], row["response_engine"]),
            "asr_model": self.role_lineage("response_check").get("asr", ""),
            "units_model": self.units_model(),
            "config_fingerprint": self.shard_fingerprint,
        }

    def checked_audio(self, item_id: str, side: str, struct: dict | None, max_seconds: float | None):
        """(HF Audio struct with 16 kHz FLAC, seconds), or the failure to ledger."""
        data = (struct or {}).get("bytes")
        if not data:
            return self.fail(item_id, f"empty_{side}_audio")
        try:
            clip, rate = audio.decode(data)
        except Exception as exc:
            return self.fail(item_id, f"corrupt_{side}_audio", f"{type(exc).__name__}: {exc}")
        if clip.size == 0:
            return self.fail(item_id, f"empty_{side}_audio")
        if not np.isfinite(clip).all():
            return self.fail(item_id, f"corrupt_{side}_audio", "NaN or infinite samples")
        seconds = len(clip) / rate
        if max_seconds is not None and seconds > max_seconds:
            return self.fail(item_id, f"{side}_too_long", f"duration={seconds:.2f}s max={max_seconds}")
        target = self.settings.sample_rate
        if rate != target or not data.startswith(FLAC_MAGIC):
            clip = audio.resample(clip, rate, target)
            data, seconds = audio.encode_flac(clip, target), len(clip) / target
        return audio.audio_struct(data, f"{item_id}.{side}.flac"), seconds

    # -- lineage ------------------------------------------------------------------------------
    def role_lineage(self, role: str) -> dict[str, str]:
        return self.lineage.get(self.settings.inputs[role], {})

    def voice_version(self, role: str, speaker: str, engine: str) -> str:
        return self.role_lineage(role).get(speaker) or engine

    def units_model(self) -> str:
        units = self.role_lineage("units")
        parts = [units.get("hubert", ""), f"layer {units['hubert_layer']}" if units.get("hubert_layer") else "",
                 units.get("kmeans", "")]
        return ", ".join(p for p in parts if p)

    # -- after all shards -----------------------------------------------------------------------
    def finalize(self, shard_paths: list[str]) -> None:
        """data/ splits, optional export, plots and the card: each a step a rerun skips when its inputs
        did not change (splits: splits.json; exports: their stamps; card and plots: step-card.json)."""
        from stages.exports import run_exports
        from stages.package_train import decode_free, publish_splits

        s, layout = self.settings, Layout(self.context["data_root"])
        features = decode_free(self.features())
        splits = publish_splits(shard_paths, layout, features, s.splits, s.rows_per_file, s.rows_per_row_group,
                                layout.manifest_dir(self.name) / "splits.json")
        published = [f for split in splits.values() for f in split.files]
        exports = run_exports({name: split.files for name, split in splits.items() if split.files},
                              layout.export_dir(), s.export)
        pipeline = [*self.lineage, self.name]
        lineage = {**self.lineage, self.name: engine_versions(layout, self.name)}
        key = {"code": card_code_digest(), "published": files_key(published), "ledger": ledger_key(layout, pipeline),
               "card": dataclasses.asdict(s.card), "splits": s.splits, "lineage": lineage, "exports": exports}
        if is_current(layout, self.name, "card", key):
            log.info("package: card and plots unchanged (%s)", layout.card())
        else:
            self.write_card(layout, features, splits, published, exports, pipeline, lineage)
            plots = sorted(layout.plots_dir().glob("*.png")) if s.card.plots else []
            mark_done(layout, self.name, "card", key, [layout.card(), *plots])
        if s.push_to_hub.repo_id:
            from stages.package_hub import push_to_hub

            push_to_hub(layout.root, s.push_to_hub.repo_id, s.push_to_hub.private, s.push_to_hub.token_env)

    def write_card(self, layout: Layout, features, splits, published, exports, pipeline, lineage) -> None:
        from stages.package_card import CardInputs, drops, funnel, render
        from stages.package_plots import write_plots
        from stages.package_stats import training_stats

        s = self.settings
        stats = training_stats(published)
        kept = set()
        for path in published:
            kept.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
        account = drops(layout, kept, pipeline)
        plots = write_plots(stats, funnel(account, pipeline), layout.plots_dir()) if s.card.plots and stats.items else []
        card = CardInputs(pretty_name=s.card.pretty_name, license=s.card.license, notice=s.card.notice,
                          features=features, stats=stats, splits=splits, fractions=dict(s.splits), plots=plots,
                          lineage=lineage, pipeline=pipeline, exports=exports)
        # Items that vanished upstream without a ledger entry cannot be ledgered per item here
        # (the engine's join drops them before process()); they are listed with the drops.
        atomic_write_json(layout.manifest_dir(self.name) / "drops.json", account.to_json())
        if account.unaccounted:
            log.warning("package: %d items vanished upstream with no ledger entry (see drops.json)",
                        len(account.unaccounted))
        atomic_write_bytes(layout.card(), render(layout, card, account).encode())
        log.info("package: %d rows published (%s); card at %s", stats.items,
                 ", ".join(f"{n}: {split.rows}" for n, split in splits.items()), layout.card())
