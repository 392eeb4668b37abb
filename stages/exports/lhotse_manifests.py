"""Lhotse manifests (lhotse.readthedocs.io): per split, `instructs2s_{recordings,supervisions,cuts}_<split>.jsonl.gz`
and the FLAC clips they point at (absolute paths), under `audio/<split>/`.

A recording and a supervision (its text) per side; a cut per item: the spoken instruction
(recording + supervision with `instruction_spoken`) and, as custom fields, the response's
recording (`cut.load_response_recording()`), text, units (`response_units`, repeats merged) and
every other column of the training rows but the audio.
"""
from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path

from pipeline.shards import atomic_stream, atomic_write_bytes
from stages.exports.files import content_name, iter_rows
from stages.exports.settings import ExportSettings

VERSION = "1"
PREFIX = "instructs2s"
MANIFESTS = ("recordings", "supervisions", "cuts")
NATIVE = {"id", "instruction_audio", "response_audio", "instruction_spoken", "instruction_duration",
          "instruction_speaker"}  # carried by the cut's own recording and supervision, not as custom fields


def manifest_path(out_dir: Path, kind: str, split: str) -> Path:
    return out_dir / f"{PREFIX}_{kind}_{split}.jsonl.gz"


def export(splits: dict[str, list[Path]], out_dir: Path, settings: ExportSettings) -> set[Path]:
    written: set[Path] = set()
    for split, files in splits.items():
        paths = {kind: manifest_path(out_dir, kind, split) for kind in MANIFESTS}
        with contextlib.ExitStack() as stack:
            sinks = {kind: stack.enter_context(jsonl_gz(path)) for kind, path in paths.items()}
            for row in iter_rows(files):
                for kind, manifests in item_manifests(row, out_dir / "audio" / split, written).items():
                    for manifest in manifests:
                        sinks[kind].write(json.dumps(manifest.to_dict(), ensure_ascii=False).encode() + b"\n")
        written.update(paths.values())
    return written


@contextlib.contextmanager
def jsonl_gz(path: Path):
    """gzip with a fixed header time and no file name inside: a rerun writes the same bytes."""
    with atomic_stream(path) as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        yield gz


def item_manifests(row: dict, audio_dir: Path, written: set[Path]) -> dict[str, list]:
    from lhotse import MonoCut, Recording, SupervisionSegment

    item_id, recordings, supervisions = row["id"], {}, {}
    for side, text, speaker in (("instruction", row["instruction_spoken"], row["instruction_speaker"]),
                                ("response", row["response"], row["response_speaker"])):
        flac = row[f"{side}_audio"]["bytes"]
        path = audio_dir / content_name(item_id, flac, f".{side}.flac")
        if not path.exists():  # the name holds the content's hash: an existing file is this clip
            atomic_write_bytes(path, flac)
        written.add(path)
        recording = Recording.from_file(path, recording_id=f"{item_id}_{side}")
        recordings[side] = recording
        supervisions[side] = SupervisionSegment(
            id=f"{item_id}_{side}", recording_id=recording.id, start=0.0, duration=recording.duration,
            channel=0, text=text, language="English", speaker=speaker)
    custom = {k: v for k, v in row.items() if k not in NATIVE}
    custom |= {"response_recording": recordings["response"], "response_recording_unaligned": True}
    cut = MonoCut(id=item_id, start=0.0, duration=recordings["instruction"].duration, channel=0,
                  recording=recordings["instruction"], supervisions=[supervisions["instruction"]], custom=custom)
    return {"recordings": list(recordings.values()), "supervisions": list(supervisions.values()), "cuts": [cut]}


def describe(out_dir: str) -> str:
    return (f"Lhotse manifests: `{out_dir}/{PREFIX}_{{recordings,supervisions,cuts}}_<split>.jsonl.gz` over FLAC clips "
            "(absolute paths); cuts hold the instruction, custom fields the response recording, text and units")
