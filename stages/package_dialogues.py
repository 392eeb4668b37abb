"""package_dialogues: the turn rows of a multi-turn build grouped back into one training row per
dialogue, then (finalize) the splits, the release-layout export and the dataset card.

A dialogue is kept whole, or cut at its last good turn (`on_failed_turn`): a turn lost upstream
(ledgered there) or failing here (audio, units) ends it, and every later turn is ledgered with
its turn id. Voices stay per dialogue because the speak stage picks them by `dialogue_id`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import groupby
from typing import ClassVar

import pyarrow.parquet as pq

from pipeline.errors import ConfigError, ItemFailure
from pipeline.shard_progress import counted
from pipeline.shards import Layout, atomic_write_bytes, atomic_write_json
from stages import package
from stages.package import DNSMOS, PackageSettings, PackageStage

log = logging.getLogger(__name__)

ROLE_COLUMNS = {
    "turns": ["dialogue_id", "turn", "num_turns", "source", "instruction", "instruction_spoken", "response",
              "meaning_similarity", "answer_similarity", "dialogue_meta"],
    # speech, its checks and units are read per turn exactly as package reads them per item
    **{role: package.ROLE_COLUMNS[role] for role in
       ("instruction_audio", "instruction_check", "response_audio", "response_check", "units")},
}
EXPORTS = {"instructs2s_release"}  # the formats that carry dialogues


@dataclass
class PackageDialoguesSettings(PackageSettings):
    kind: str = "package_dialogues"
    on_failed_turn: str = "cut"  # cut: keep the turns before a lost or failed one | drop: ledger the whole dialogue

    ROLES: ClassVar[dict] = ROLE_COLUMNS

    def __post_init__(self):
        super().__post_init__()
        if self.on_failed_turn not in ("cut", "drop"):
            raise ValueError(f"on_failed_turn must be cut or drop, got {self.on_failed_turn!r}")


def dialogue_features(rate: int = 16000):
    from datasets import Audio, Features, List, Value

    text, f32 = Value("string"), Value("float32")
    turn = {
        "turn": Value("int8"), "instruction": text, "instruction_spoken": text, "response": text,
        "instruction_audio": Audio(sampling_rate=rate), "response_audio": Audio(sampling_rate=rate),
        "instruction_duration": f32, "response_duration": f32, "instruction_wer": f32, "response_wer": f32,
        **{f"{side}_{c}": f32 for side in ("instruction", "response") for c in DNSMOS},
        "response_units": List(Value("int16")), "response_unit_frames": Value("int32"),
        "response_units_per_second": f32, "meaning_similarity": f32, "answer_similarity": f32,
    }
    return Features({
        "id": text, "source": text, "num_turns": Value("int8"), "instruction_speaker": text,
        "response_speaker": text, "turns": List(turn), "dialogue_meta": text,
        "instruction_tts": text, "response_tts": text, "asr_model": text, "units_model": text,
        "config_fingerprint": text,
    })


class PackageDialoguesStage(PackageStage):
    Settings: ClassVar = PackageDialoguesSettings
    version: ClassVar[str] = "1"
    one_row_per_input: ClassVar[bool] = False  # turn rows in, one row per dialogue out

    def features(self):
        return dialogue_features(self.settings.sample_rate)

    def check(self) -> None:
        other = sorted(set(self.settings.export.formats) - EXPORTS)
        if other:
            raise ConfigError(f"stages.{self.name}.export.formats: {other} hold single-turn rows only; "
                              f"dialogues export as {sorted(EXPORTS)}")

    def isolation_groups(self, rows: list[dict]) -> list[list[dict]]:
        return [list(group) for _, group in groupby(rows, key=lambda r: r["dialogue_id"])]

    def process(self, rows: list[dict]) -> list:
        out: list[dict | ItemFailure] = []
        for group in self.isolation_groups(list(counted(rows))):
            out += self.package_dialogue(sorted(group, key=lambda r: r["turn"]))
        return out

    def package_dialogue(self, rows: list[dict]) -> list[dict | ItemFailure]:
        turns, failures = [], []
        expected = rows[0]["num_turns"]
        by_turn = {r["turn"]: r for r in rows}
        for number in range(1, expected + 1):
            row = by_turn.get(number)
            if row is None:  # lost upstream, ledgered there
                reason = None
            else:
                packed = self.package_turn(row)
                if isinstance(packed, ItemFailure):
                    failures.append(packed)
                    reason = packed.reason
                else:
                    turns.append(packed)
                    continue
            dialogue_id = rows[0]["dialogue_id"]
            later = [r for t, r in sorted(by_turn.items()) if t > number]
            detail = f"turn {number} of {dialogue_id} was {'lost upstream' if reason is None else reason}"
            failures += [self.fail(r["id"], "cut_after_failed_turn", detail) for r in later]
            if self.settings.on_failed_turn == "drop" or not turns:
                return failures + [self.fail(t["id"], "dialogue_dropped", detail) for t in turns]
            break
        return [self.dialogue_row(rows[0], turns)] + failures

    def package_turn(self, row: dict) -> dict | ItemFailure:
        turn_id = row["id"]
        sides = self.checked_sides(turn_id, row)
        if not isinstance(sides, tuple):
            return sides
        instruction, response = sides
        self.count("turns")
        return {
            "id": turn_id, "turn": row["turn"], "instruction": row["instruction"],
            "instruction_spoken": row["instruction_spoken"], "response": row["response"],
            "instruction_audio": instruction[0], "response_audio": response[0],
            "instruction_duration": instruction[1], "response_duration": response[1],
            "instruction_wer": row["instruction_wer"], "response_wer": row["response_wer"],
            **{f"{side}_{c}": row[f"{side}_{c}"] for side in ("instruction", "response") for c in DNSMOS},
            "response_units": row["units"], "response_unit_frames": row["unit_frames"],
            "response_units_per_second": row["units_per_second"],
            "meaning_similarity": row["meaning_similarity"], "answer_similarity": row["answer_similarity"],
            "_speakers": (row["instruction_speaker"], row["instruction_engine"], row["response_speaker"],
                          row["response_engine"]),
        }

    def dialogue_row(self, first: dict, turns: list[dict]) -> dict:
        instruction_speaker, instruction_engine, response_speaker, response_engine = turns[0]["_speakers"]
        self.count("dialogues")
        return {
            "id": first["dialogue_id"], "source": first["source"], "num_turns": len(turns),
            "instruction_speaker": instruction_speaker, "response_speaker": response_speaker,
            "turns": [{k: v for k, v in t.items() if k not in ("id", "_speakers")} for t in turns],
            "dialogue_meta": first["dialogue_meta"],
            "instruction_tts": self.voice_version("instruction_audio", instruction_speaker, instruction_engine),
            "response_tts": self.voice_version("response_audio", response_speaker, response_engine),
            "asr_model": self.role_lineage("response_check").get("asr", ""),
            "units_model": self.units_model(),
            "config_fingerprint": self.shard_fingerprint,
        }

    # -- after all shards: PackageStage.finalize, with this card ---------------------------------
    def write_card(self, layout: Layout, features, splits, published, exports, pipeline, lineage) -> None:
        from stages.package_card import drops
        from stages.package_dialogue_card import dialogue_card, dialogue_stats

        kept = set()
        for path in published:
            kept.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
        account = drops(layout, kept, pipeline, item_of=dialogue_of)
        atomic_write_json(layout.manifest_dir(self.name) / "drops.json", account.to_json())
        text = dialogue_card(layout, self.settings, features, splits, dialogue_stats(published), account, pipeline,
                             lineage, exports)
        atomic_write_bytes(layout.card(), text.encode())
        log.info("package: %d dialogues published (%s); card at %s", len(kept),
                 ", ".join(f"{n}: {split.rows}" for n, split in splits.items()), layout.card())


def dialogue_of(item_id: str) -> str:
    """For the drop account: a dialogue is lost with its first turn (`<dialogue_id>-t1`), so that
    turn's ledger rows count for the dialogue; a later turn's only cut it and stay its own."""
    head, sep, tail = item_id.rpartition("-t")
    return head if sep and tail == "1" else item_id

