"""Streaming the pipeline's training shards into micro-batches.

Shards: the published train split `${data_root}/data/train-*.parquet` (builds before the split
layout: `train/*.parquet`), read with pyarrow `iter_batches` (never a whole file in memory).
Columns used: id, instruction_audio (HF Audio struct with FLAC bytes), instruction_duration,
response, response_units (stage 2).

Dialogue shards (a `turns` column: one row per dialogue, a list of turns with the same fields plus
instruction_spoken) become examples before anything else sees them: by default one per dialogue,
its last turn spoken and trained on, the earlier turns as text context in the chat template
(`data.dialogue_turns: every`: one example per turn, each after its earlier turns). An example
counts as one item everywhere (batches, steps, census, resume); held-out membership goes by the
dialogue id, so a dialogue's turns never straddle train and evaluation. Context that would take
an example over `data.max_length` tokens loses its oldest turns, counted at load time as
`context_turns` in the batch's `dropped` field.

Order of one epoch is a pure function of (seed, epoch): files shuffled, then a fixed-size shuffle
buffer. Items are numbered in that order after filtering; item i goes to rank i % world, and a
resumed run skips the first `step * batch_size` items of the epoch, so it sees exactly the items an
uninterrupted run would.

Evaluation: the published validation split (`data/validation-*.parquet`) when it has rows; else
the items of the train shards whose id hash falls below `eval_fraction`, held out of training.

Skipped items (counted, reported at start by `census`): empty response, instruction audio over
30 s, response longer than `max_response_tokens`, and in stage 2 missing/empty or out-of-range
units. Audio that fails to decode (or is long without a duration column) is dropped from its
micro-batch at load time and counted in the batch's `dropped` field.
"""

from __future__ import annotations

import glob
import hashlib
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from . import audio as audio_io
from .config import UserError
from .model import IGNORE
from .prompt import PromptBuilder

COLUMNS = ("id", "instruction_audio", "instruction_duration", "response", "response_units", "turns")
META_COLUMNS = ("id", "instruction_duration", "response", "response_units", "turns")
# the fields of a dialogue's turns that are read (response_audio never is)
TURN_FIELDS = ("instruction", "instruction_spoken", "instruction_audio", "instruction_duration", "response",
               "response_units")
TURN_META_FIELDS = ("instruction_duration", "response", "response_units")
DIALOGUE_TURNS = ("last", "every")
N_UNITS = 1000


def shard_files(data_root: str, patterns=("data/train-*.parquet", "train/*.parquet")) -> list[str]:
    """The files of the first glob (relative to data_root) that matches any."""
    if not os.path.isdir(str(data_root)):
        raise UserError(f"data_root {data_root} is not a folder")
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    for pattern in patterns:
        files = sorted(glob.glob(os.path.join(str(data_root), pattern)))
        if files:
            return files
    raise UserError(f"no training shards match {' or '.join(os.path.join(str(data_root), p) for p in patterns)}")


@dataclass(frozen=True)
class Splits:
    """The files each split reads, and the share of the train files' items held out (by id hash)
    for evaluation; with a validation split of its own nothing is held out of train."""

    train: tuple[str, ...]
    eval: tuple[str, ...]
    held_out: float
    source: str  # how evaluation items are chosen, for the log

    def files(self, split: str) -> tuple[str, ...]:
        return self.eval if split == "eval" else self.train

    def eval_fraction(self, split: str) -> float:
        """The in_eval_split fraction for items of files(split): all of a separate validation split."""
        return 1.0 if split == "eval" and self.eval != self.train else self.held_out


def data_splits(data_root: str, dcfg) -> Splits:
    """Train files, and the validation split's files when it has rows, else a hash hold-out."""
    import pyarrow.parquet as pq

    train = tuple(shard_files(data_root, dcfg.shards))
    pattern = dcfg.get("validation")
    found = sorted(glob.glob(os.path.join(str(data_root), pattern))) if pattern else []
    validation = tuple(f for f in found if f not in train and pq.ParquetFile(f).metadata.num_rows > 0)
    if validation:
        return Splits(train, validation, 0.0, f"the validation split ({len(validation)} files)")
    return Splits(train, train, float(dcfg.eval_fraction),
                  f"{float(dcfg.eval_fraction):.1%} of the train files held out by id hash (no validation split)")


def in_eval_split(item_id: str, fraction: float) -> bool:
    """Stable held-out membership from the id alone."""
    h = int.from_bytes(hashlib.sha1(str(item_id).encode("utf-8")).digest()[:8], "big")
    return h / 2.0**64 < fraction


def dialogue_turns(dcfg) -> str:
    """Which turns of a dialogue are trained on: `last` or `every`."""
    mode = str(dcfg.get("dialogue_turns", "last"))
    if mode not in DIALOGUE_TURNS:
        raise UserError(f"data.dialogue_turns={mode}: use {' or '.join(DIALOGUE_TURNS)}")
    return mode


def examples(row: dict, mode: str = "last"):
    """The training examples of one shard row: a single-turn row itself, or for a dialogue row the
    turns trained on (`mode`), each with the earlier turns as [(user text, response)] `context`."""
    if "turns" not in row:
        yield row
        return
    turns = row["turns"] or []
    if not turns:
        yield {"id": row["id"], "dialogue_id": row["id"], "no_turns": True}
        return
    for i in range(len(turns)) if mode == "every" else [len(turns) - 1]:
        turn = turns[i]
        yield {"id": f"{row['id']}-t{i + 1}" if mode == "every" else row["id"], "dialogue_id": row["id"],
               **{k: turn.get(k) for k in ("instruction_audio", "instruction_duration", "response", "response_units")},
               "context": [(t.get("instruction_spoken") or t.get("instruction") or "", t.get("response") or "")
                           for t in turns[:i]]}


def holdout_id(example: dict) -> str:
    """The id that decides held-out membership: the dialogue's for dialogue examples."""
    return example.get("dialogue_id") or example["id"]


def skip_reason(row: dict, stage: int, n_tokens: int, max_seconds: float, max_tokens: int) -> str | None:
    """Why an item cannot be used in `stage`, from its metadata; None when it can."""
    if row.get("no_turns"):
        return "no_turns"
    if not (row.get("response") or "").strip():
        return "empty_response"
    duration = row.get("instruction_duration")
    if duration is not None and duration > max_seconds:
        return "audio_too_long"
    if n_tokens > max_tokens:
        return "response_too_long"
    if stage == 2:
        units = row.get("response_units")
        if not units:
            return "no_units"
        if min(units) < 0 or max(units) >= N_UNITS:
            return "bad_units"
    return None


def _batches(path: str, wanted, batch_size: int, turn_fields=TURN_FIELDS):
    """Record batches of the `wanted` columns this shard has (older builds may lack some); of a
    `turns` column only its `turn_fields`."""
    import pyarrow.parquet as pq

    shard = pq.ParquetFile(path)
    names = set(shard.schema_arrow.names)
    columns = [c for c in wanted if c in names and c != "turns"]
    if "turns" in wanted and "turns" in names:
        # leaf paths look like turns.list.element.<field>[...]; a path prefix selects the field
        nested = {".".join(p[:4]) for p in (c.path.split(".") for c in shard.schema)
                  if p[0] == "turns" and len(p) >= 4 and p[3] in turn_fields}
        columns += sorted(nested) or ["turns"]
    return shard.iter_batches(batch_size=batch_size, columns=columns)


@dataclass
class Census:
    """Usable and skipped item counts of one stage."""

    stage: int
    train: int = 0
    eval: int = 0
    skipped: Counter = field(default_factory=Counter)

    def message(self) -> str:
        why = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        return (f"stage {self.stage}: {self.train} training items, {self.eval} for evaluation; "
                f"skipped {sum(self.skipped.values())} ({why})")


def census(splits: Splits, builder: PromptBuilder, dcfg, stages=(1, 2)) -> dict[int, Census]:
    """One pass over the metadata columns (no audio): counts per stage and split."""

    out = {s: Census(s) for s in stages}
    passes = [("train", splits.train)] + ([("eval", splits.eval)] if splits.eval != splits.train else [])
    for split, files in passes:
        _count(files, splits.eval_fraction(split), builder, dcfg, out)
    return out


def _count(files, eval_fraction: float, builder: PromptBuilder, dcfg, out: dict[int, Census]) -> None:
    stages, mode = list(out), dialogue_turns(dcfg)
    for path in files:
        for rb in _batches(path, META_COLUMNS, 4096, TURN_META_FIELDS):
            rows = [ex for r in rb.to_pylist() for ex in examples(r, mode)]
            counts = builder.count_response_tokens([(r.get("response") or "") for r in rows])
            for row, n in zip(rows, counts):
                held = in_eval_split(holdout_id(row), eval_fraction)
                for s in stages:
                    why = skip_reason(row, s, n, dcfg.max_audio_seconds, dcfg.max_response_tokens)
                    if why:
                        out[s].skipped[why] += 1
                    elif held:
                        out[s].eval += 1
                    else:
                        out[s].train += 1


def raw_rows(files, seed: int, epoch: int, shuffle_buffer: int, read_rows: int, columns=COLUMNS,
             dialogue_turns: str = "last"):
    """All examples of the shards (rows; dialogue rows expanded) in the fixed order of (seed, epoch)."""

    rng = random.Random(f"omni:{seed}:{epoch}")
    order = list(files)
    if shuffle_buffer > 1:
        rng.shuffle(order)
    buf: list = []
    for path in order:
        for rb in _batches(path, columns, read_rows):
            for row in (ex for r in rb.to_pylist() for ex in examples(r, dialogue_turns)):
                if shuffle_buffer <= 1:
                    yield row
                    continue
                buf.append(row)
                if len(buf) >= shuffle_buffer:
                    i = rng.randrange(len(buf))
                    buf[i], buf[-1] = buf[-1], buf[i]
                    yield buf.pop()
    rng.shuffle(buf)
    yield from buf


def usable_items(files, stage, split, builder, dcfg, seed, epoch, shuffle=True, eval_fraction=None):
    """(row, response_ids) of the items of `split` usable in `stage`, in epoch order; an item is
    in the eval split when its id hash falls below `eval_fraction` (default: dcfg.eval_fraction)."""
    buffer = int(dcfg.shuffle_buffer) if shuffle else 1
    want_eval = split == "eval"
    fraction = dcfg.eval_fraction if eval_fraction is None else eval_fraction
    mode = dialogue_turns(dcfg)
    for row in raw_rows(files, seed, epoch, buffer, int(dcfg.read_rows), dialogue_turns=mode):
        if in_eval_split(holdout_id(row), fraction) != want_eval:
            continue
        ids = builder.response_ids(row.get("response") or "")
        if skip_reason(row, stage, len(ids), dcfg.max_audio_seconds, dcfg.max_response_tokens) is None:
            yield row, ids


class Dropped(Exception):
    """An item that turned out unusable only when its audio was decoded."""


def _instruction_audio(row) -> np.ndarray:
    cell = row.get("instruction_audio") or {}
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    try:
        if data:
            return audio_io.decode_bytes(data)
        path = cell.get("path") if isinstance(cell, dict) else None
        if path and Path(path).exists():
            return audio_io.read_file(path)
    except Exception as err:  # corrupt bytes: drop the item, never the run
        raise Dropped("bad_audio") from err
    raise Dropped("no_audio")


def make_item(row, response_ids, builder: PromptBuilder, stage: int, dcfg, n_mels: int) -> dict:
    samples = _instruction_audio(row)
    if len(samples) > dcfg.max_audio_seconds * audio_io.SAMPLE_RATE + 160:
        raise Dropped("audio_too_long")
    if row.get("context"):
        ex, left_out = builder.dialogue_example(row["context"], list(response_ids), dcfg.get("max_length"))
    else:
        ex, left_out = builder.example(list(response_ids)), 0
    item = {"id": row["id"], "features": audio_io.log_mel(samples, n_mels), "example": ex}
    if left_out:
        item["context_turns_left_out"] = left_out
    if stage == 2:
        item["units"] = [int(u) for u in row["response_units"]]
    return item


def collate(items: list[dict], pad_id: int) -> dict:
    """Right-padded tensors: ids with pad, labels and units with -100, masks with 0/False."""
    n, width = len(items), max(len(it["example"].input_ids) for it in items)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    labels = torch.full((n, width), IGNORE, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    response = torch.zeros((n, width), dtype=torch.bool)
    for b, it in enumerate(items):
        ex = it["example"]
        k = len(ex.input_ids)
        input_ids[b, :k] = torch.tensor(ex.input_ids)
        labels[b, :k] = torch.tensor(ex.labels)
        attention[b, :k] = 1
        response[b, ex.response_start:ex.response_start + ex.response_len] = True
    batch = {"ids": [it["id"] for it in items], "input_ids": input_ids, "labels": labels,
             "attention_mask": attention, "response_mask": response,
             "features": torch.from_numpy(np.stack([it["features"] for it in items]))}
    if all("units" in it for it in items):
        u = max(len(it["units"]) for it in items)
        units = torch.full((n, u), IGNORE, dtype=torch.long)
        for b, it in enumerate(items):
            units[b, :len(it["units"])] = torch.tensor(it["units"], dtype=torch.long)
        batch["units"] = units
    return batch


class MicroBatches(torch.utils.data.IterableDataset):
    """Micro-batches of one rank for one epoch, starting after `skip_items` items.

    Item i (counted over all ranks, from the start of the epoch) belongs to rank i % world.
    Micro-batch j of this rank is built by DataLoader worker j % num_workers, which keeps the
    order identical for any number of workers. Incomplete trailing micro-batches are dropped in
    training and kept in evaluation.
    """

    def __init__(self, files, builder: PromptBuilder, dcfg, *, stage: int, split: str = "train",
                 micro_batch_size: int, seed: int, epoch: int = 0, rank: int = 0, world: int = 1,
                 skip_items: int = 0, max_items: int | None = None, n_mels: int = 128,
                 eval_fraction: float | None = None):
        super().__init__()
        self.files, self.builder, self.dcfg = list(files), builder, dcfg
        self.eval_fraction = eval_fraction
        self.stage, self.split, self.micro = stage, split, micro_batch_size
        self.seed, self.epoch, self.rank, self.world = seed, epoch, rank, world
        self.skip, self.max_items, self.n_mels = skip_items, max_items, n_mels

    def _build(self, group) -> dict | None:
        items, dropped = [], Counter()
        for row, ids in group:
            try:
                items.append(make_item(row, ids, self.builder, self.stage, self.dcfg, self.n_mels))
            except Dropped as why:
                dropped[str(why)] += 1
                continue
            if items[-1].get("context_turns_left_out"):  # the oldest turns of a long dialogue's context
                dropped["context_turns"] += items[-1]["context_turns_left_out"]
        batch = collate(items, self.builder.pad_id) if items else {"ids": []}
        batch["dropped"] = dict(dropped)
        return batch

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        train = self.split == "train"
        items = usable_items(self.files, self.stage, self.split, self.builder, self.dcfg,
                             self.seed, self.epoch, shuffle=train, eval_fraction=self.eval_fraction)
        items = islice(items, self.skip, None if self.max_items is None else self.skip + self.max_items)
        group, j = [], 0
        for i, item in enumerate(items, start=self.skip):
            if i % self.world != self.rank:
                continue
            group.append(item)
            if len(group) == self.micro:
                if j % nw == wid:
                    yield self._build(group)
                group, j = [], j + 1
        if group and not train and j % nw == wid:
            yield self._build(group)
