"""release: the InstructS2S-200K release layout (ICTNLP/InstructS2S-200K on the Hub, or a local
copy, or this project's own `instructs2s_release` export) read back as turn rows.

The release is a JSON list of conversations, `{"id", "conversation": [{"from": "human" | "gpt",
"speech", "text", "unit"}, ...]}`, human and gpt turns alternating, with a wav per turn. On the
Hub the list is `instruct_en_200k_data_cosy2.json` and the wavs come as one tar.gz cut into parts
(`en_part_00`, `en_part_01`, ...) that unpack to `en/wav/<id>/<id>-<turn>-{user,assistant}.wav`,
while each turn's `speech` reads `data/multiturn_instruction/en/wav/<id>/<file>`: a wav is found
at `speech` under the list's folder, else as `<id folder>/<file>` under `audio_dir` (default: the
list's `en/wav/`). The gpt turns' `unit` holds CosyVoice 2 tokens as "<12><34>..." with repeats.

Each conversation is one source record, so all its turns land in one shard (a later stage can
group them again). process() expands it into one row per human/gpt pair: a row per turn in the
shared turn-row format plus both clips (FLAC) and the release's own units. A bad record, a
missing or unreadable wav or a bad unit string is a ledger entry naming its turn; the turns after
it are cut (`bad_turn: cut`) or the whole conversation goes (`bad_turn: drop`), so a dialogue
keeps an intact history.
"""
from __future__ import annotations

import io
import itertools
import json
import logging
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Iterator, Optional

import pyarrow as pa

from pipeline.errors import ConfigError, ItemFailure
from pipeline.stage import SourceStage, StageSettings
from stages import audio
from stages.sources import read_local, resolve_path

log = logging.getLogger(__name__)

HUB_LIST_FILE = "instruct_en_200k_data_cosy2.json"
LIST_FILES = (HUB_LIST_FILE, "conversations.json")  # a folder's list: the Hub's name, else the export's
BAD_TURN_POLICIES = ("cut", "drop")
UNIT = re.compile(r"<(\d+)>")


@dataclass
class ReleaseSourceSettings:
    name: str = "instructs2s_release"
    path: Optional[str] = None  # a local folder holding the list (or the list file itself); null: the Hub
    dataset: str = "ICTNLP/InstructS2S-200K"  # Hub dataset read when path is null
    revision: Optional[str] = None  # Hub commit pinned for a reproducible read
    list_file: Optional[str] = None  # the list's file name in the folder; null: the first of LIST_FILES present
    audio_dir: Optional[str] = None  # folder of `<id>/<file>` wavs; null: `en/wav/` beside the list
    archive_parts: int = 33  # Hub: en_part_00 .. en_part_<N-1>, one tar.gz of the wavs
    limit: Optional[int] = None  # cap on the number of conversations


@dataclass
class ReleaseSettings(StageSettings):
    kind: str = "release"
    source: ReleaseSourceSettings = field(default_factory=ReleaseSourceSettings)
    bad_turn: str = "cut"  # a turn without usable audio: cut the dialogue there | drop the dialogue
    max_record_bytes: int = 1_000_000  # a conversation larger than this is ledgered, not parsed

    def __post_init__(self):
        super().__post_init__()
        if self.bad_turn not in BAD_TURN_POLICIES:
            raise ValueError(f"bad_turn must be one of {', '.join(BAD_TURN_POLICIES)}, got {self.bad_turn!r}")
        if self.source.limit is not None and self.source.limit < 0:
            raise ValueError(f"source.limit must be >= 0 (or null for all), got {self.source.limit}")
        if self.source.archive_parts < 1:
            raise ValueError(f"source.archive_parts must be >= 1, got {self.source.archive_parts}")


OUTPUT = pa.schema([
    ("id", pa.string()), ("dialogue_id", pa.string()), ("turn", pa.int8()), ("turns_planned", pa.int8()),
    ("instruction", pa.string()), ("instruction_spoken", pa.string()), ("response", pa.string()),
    ("meaning_similarity", pa.float32()), ("answer_similarity", pa.float32()), ("dialogue_meta", pa.string()),
    ("instruction_audio", audio.AUDIO_STRUCT), ("response_audio", audio.AUDIO_STRUCT),
    ("release_units", pa.list_(pa.int32())),
])


class ReleaseSource(SourceStage):
    Settings: ClassVar = ReleaseSettings
    version: ClassVar[str] = "1"
    one_row_per_input: ClassVar[bool] = False  # one conversation in, one row per turn out

    def output_schema(self) -> pa.Schema:
        return OUTPUT

    def reads_locally(self) -> bool:
        return self.settings.source.path is not None

    def expected_records(self) -> int | None:
        return self.settings.source.limit

    def check(self) -> None:
        if self.settings.source.path is not None:
            self.local_list()

    def source_identity(self) -> dict:
        src = self.settings.source
        if src.path is None:
            return {"dataset": src.dataset, "revision": src.revision, "limit": src.limit}
        # The list is read whole anyway; each record carries its wavs' sizes and times.
        return {"list": str(self.local_list()), "limit": src.limit}

    # -- where the release is --------------------------------------------------------------------
    def local_list(self) -> Path:
        return find_list(resolve_path(self.settings.source.path), self.settings.source.list_file)

    def release_list(self) -> tuple[Path, Path]:
        """The list file and the folder the wavs' `<id>/<file>` are under."""
        src = self.settings.source
        if src.path is None:
            list_path, audio_root = hub_copy(src, Path(self.context.get("model_cache", ".")).expanduser())
        else:
            list_path = self.local_list()
            audio_root = list_path.parent / "en" / "wav"
        if src.audio_dir:
            audio_root = resolve_path(src.audio_dir)
        return list_path, audio_root

    # -- reading -----------------------------------------------------------------------------------
    def read(self) -> Iterator[dict]:
        """One record per conversation, in the list's order: its id, where it is, the parsed record
        (JSON) and each turn's resolved wav with its size and time (so a changed clip changes the
        shard's fingerprint); a problem instead where the record is unusable."""
        list_path, audio_root = self.release_list()
        rows = read_local(list_path, self.settings.max_record_bytes)
        if self.settings.source.limit is not None:
            rows = itertools.islice(rows, self.settings.source.limit)
        seen: dict[str, str] = {}
        for row in rows:
            record = None if row.problem else row.record
            own = record.get("id") if isinstance(record, dict) else None
            dialogue_id = str(own) if isinstance(own, (str, int)) and str(own).strip() else f"release#{row.index:06d}"
            problem = row.problem or shape_problem(record)
            if problem is None and dialogue_id in seen:
                problem = f"id {dialogue_id} already taken by {seen[dialogue_id]}"
            seen.setdefault(dialogue_id, row.location)
            clips = [] if problem else [wav_state(list_path.parent, audio_root, t["speech"])
                                        for t in record["conversation"]]
            yield {"id": dialogue_id, "location": row.location, "problem": problem, "clips": clips,
                   "raw": None if problem else json.dumps(record, ensure_ascii=False)}

    def process(self, rows: list[dict]) -> list[dict | ItemFailure]:
        return [out for row in rows for out in self.expand(row)]

    def expand(self, row: dict) -> list[dict | ItemFailure]:
        dialogue_id = row["id"]
        if row["problem"]:
            return [self.fail(dialogue_id, "unreadable_record", f"{row['location']}: {row['problem']}")]
        turns = json.loads(row["raw"])["conversation"]
        planned = len(turns) // 2
        meta = json.dumps({"source": self.settings.source.name, "location": row["location"]})
        out: list[dict | ItemFailure] = []
        for number in range(1, planned + 1):
            human, gpt = turns[2 * number - 2], turns[2 * number - 1]
            clips = row["clips"][2 * number - 2: 2 * number]
            turn_row = self.turn_row(dialogue_id, number, planned, human, gpt, clips, meta)
            if isinstance(turn_row, ItemFailure):
                return self.after_bad_turn(dialogue_id, number, planned, turn_row, out)
            out.append(turn_row)
        return out

    def turn_row(self, dialogue_id: str, number: int, planned: int, human: dict, gpt: dict,
                 clips: list[list], meta: str) -> dict | ItemFailure:
        turn_id = f"{dialogue_id}-t{number}"
        sides = {}
        for side, (path, size, _) in zip(("instruction", "response"), clips):
            if size is None:
                return self.fail(turn_id, "missing_audio", f"turn {number}: {side} speech not found: {path}")
            try:
                clip, rate = audio.decode(Path(path).read_bytes())
            except Exception as exc:  # a truncated or foreign file: this turn, not the run
                return self.fail(turn_id, "unreadable_audio", f"turn {number}: {side} speech {path}: "
                                 f"{type(exc).__name__}: {exc}")
            sides[side] = audio.audio_struct(audio.encode_flac(clip, rate), f"{turn_id}.{side}.flac")
        units = parse_units(gpt.get("unit"))
        if isinstance(units, str):
            return self.fail(turn_id, "bad_units", f"turn {number}: {units}")
        self.count("turns")
        return {"id": turn_id, "dialogue_id": dialogue_id, "turn": number, "turns_planned": planned,
                "instruction": human["text"], "instruction_spoken": human["text"], "response": gpt["text"],
                "meaning_similarity": None, "answer_similarity": None, "dialogue_meta": meta,
                "instruction_audio": sides["instruction"], "response_audio": sides["response"],
                "release_units": units}

    def after_bad_turn(self, dialogue_id: str, number: int, planned: int, failure: ItemFailure,
                       kept: list[dict | ItemFailure]) -> list[dict | ItemFailure]:
        reason = f"turn {number} of {dialogue_id} was dropped ({failure.reason})"
        later = [self.fail(f"{dialogue_id}-t{n}", "after_bad_turn", reason) for n in range(number + 1, planned + 1)]
        if self.settings.bad_turn == "drop":
            kept = [self.fail(r["id"], "dialogue_dropped", reason) for r in kept]
        return [*kept, failure, *later]


def find_list(path: Path, list_file: str | None) -> Path:
    if not path.exists():
        raise ConfigError(f"release source not found: {path}")
    if path.is_file():
        return path
    names = [list_file] if list_file else list(LIST_FILES)
    for name in names:
        if (path / name).is_file():
            return path / name
    raise ConfigError(f"release folder {path} holds no conversation list ({' or '.join(names)})")


def shape_problem(record) -> str | None:
    """Why a parsed record is not a release conversation, or None."""
    if not isinstance(record, dict):
        return f"expected an object, got {type(record).__name__}"
    turns = record.get("conversation")
    if not isinstance(turns, list) or not turns or len(turns) % 2:
        return "`conversation` is not a non-empty list of human/gpt pairs"
    for i, turn in enumerate(turns):
        role = "human" if i % 2 == 0 else "gpt"
        if not isinstance(turn, dict) or turn.get("from") != role:
            return f"conversation[{i}] is not a `{role}` turn"
        if not isinstance(turn.get("text"), str) or not turn["text"].strip():
            return f"conversation[{i}] has no text"
        if not isinstance(turn.get("speech"), str) or not turn["speech"]:
            return f"conversation[{i}] has no speech path"
    return None


def wav_state(list_dir: Path, audio_root: Path, speech: str) -> list:
    """[path, size, mtime_ns] of a turn's wav: `speech` under the list's folder, else its last two
    parts (`<id>/<file>`) under audio_root; size and time None where neither exists."""
    relative = Path(speech)
    for candidate in (list_dir / relative, audio_root / relative.parent.name / relative.name):
        if candidate.is_file():
            stat = candidate.stat()
            return [str(candidate), stat.st_size, stat.st_mtime_ns]
    return [str(list_dir / relative), None, None]


def parse_units(unit) -> list[int] | None | str:
    """The "<12><34>" string as integers; None where the turn has none; a problem as text."""
    if unit is None or unit == "":
        return None
    if not isinstance(unit, str):
        return f"unit is {type(unit).__name__}, expected a \"<n><n>...\" string"
    values = UNIT.findall(unit)
    if "".join(f"<{v}>" for v in values) != unit.strip():
        return f"unit is not a \"<n><n>...\" string: {unit[:80]!r}"
    numbers = [int(v) for v in values]
    if any(n >= 2**31 for n in numbers):
        return "a unit is over the int32 range"
    return numbers


# -- the Hub copy ------------------------------------------------------------------------------------
def hub_copy(src: ReleaseSourceSettings, model_cache: Path) -> tuple[Path, Path]:
    """The list and the unpacked wavs of the Hub release, downloaded once (through the Hub's own
    cache, so HF_HUB_OFFLINE reads only what is cached) and unpacked under
    ${model_cache}/instructs2s_release/<revision>/."""
    from huggingface_hub import hf_hub_download

    list_name = src.list_file or HUB_LIST_FILE

    def download(name: str) -> Path:
        try:
            return Path(hf_hub_download(src.dataset, name, repo_type="dataset", revision=src.revision))
        except Exception as exc:  # offline without a cached copy, no such file, no network
            raise ConfigError(f"cannot read {name} of {src.dataset} (revision {src.revision}) from the Hub: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
                              "Offline? Point source.path at a local copy of the release.") from None

    list_path = download(list_name)
    target = model_cache / "instructs2s_release" / (src.revision or "main")
    done = target / ".unpacked"
    if not done.is_file():
        parts = [download(f"en_part_{i:02d}") for i in range(src.archive_parts)]
        log.info("unpacking %d parts of %s into %s", len(parts), src.dataset, target)
        with tarfile.open(fileobj=ChainedFiles(parts), mode="r|gz") as archive:
            archive.extractall(target, filter="data")  # no absolute paths, links out or devices
        done.write_text("\n".join(p.name for p in parts) + "\n")
    return list_path, target / "en" / "wav"


class ChainedFiles(io.RawIOBase):
    """The parts of a split archive read as one stream, never joined on disk."""

    def __init__(self, paths: list[Path]):
        self.paths, self.current = list(paths), None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self.current is None:
                if not self.paths:
                    return 0
                self.current = open(self.paths.pop(0), "rb")
            n = self.current.readinto(buffer)
            if n:
                return n
            self.current.close()
            self.current = None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
        super().close()
