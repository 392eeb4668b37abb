"""Loading the published dataset with its audio decoded by soundfile.

The card declares the audio columns `Audio(decode=False)` (datasets' own decoder needs torchcodec,
which is not installable here), so `datasets.load_dataset(data_root)` gives {bytes, path} cells.
`load` adds a transform that turns them into {array, sampling_rate, path} when a row is read:

    from stages.loading import load
    ds = load("data")                      # DatasetDict: train, validation, test (the non-empty ones)
    clip = ds["train"][0]["instruction_audio"]["array"]   # float32, 16 kHz mono
"""
from __future__ import annotations

import io
from pathlib import Path

import soundfile as sf

AUDIO_COLUMNS = ("instruction_audio", "response_audio")


def decoded(cell: dict | None) -> dict | None:
    """{array (float32), sampling_rate, path} from a {bytes, path} cell (bytes, or else the file)."""
    if cell is None:
        return None
    source = io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell.get("path")
    if not source:
        raise ValueError("an audio cell with neither bytes nor a path")
    array, rate = sf.read(source, dtype="float32")
    return {"array": array, "sampling_rate": rate, "path": cell.get("path")}


def decode_audio(batch: dict) -> dict:
    """The transform: decodes the audio columns present in a batch (dict of column -> values)."""
    for column in AUDIO_COLUMNS:
        if column in batch:
            batch[column] = [decoded(cell) for cell in batch[column]]
    return batch


def load(data_root: str | Path, split: str | None = None, **load_kwargs):
    """The published splits of `data_root` (a DatasetDict, or one Dataset with `split`), with audio
    decoded on access. `load_kwargs` go to `datasets.load_dataset` (e.g. cache_dir)."""
    from datasets import load_dataset

    return load_dataset(str(data_root), split=split, **load_kwargs).with_transform(decode_audio)
