"""Data: chat-template labels, unit padding, skip counting, validation split or hash hold-out,
resumable order."""

import torch

from omni.build import load_tokenizer
from omni.data import MicroBatches, census, data_splits, in_eval_split, shard_files
from omni.model import IGNORE, SPEECH_SLOT
from omni.prompt import PromptBuilder

SLOTS = 300


def _setup(omni_cfg, root, *overrides):
    cfg = omni_cfg(root, *overrides)
    tok = load_tokenizer(cfg.train.tokenizer)
    builder = PromptBuilder(tok, cfg.data.system_prompt, cfg.data.instruction, SLOTS)
    return cfg, tok, builder, shard_files(root)


def _stream(cfg, builder, files, **kw):
    args = dict(stage=2, split="train", micro_batch_size=2, seed=0, epoch=0)
    args.update(kw)
    return list(MicroBatches(files, builder, cfg.data, **args))


def test_prompt_uses_the_chat_template_with_system_prompt_and_speech_slots(mixed_data, omni_cfg):
    cfg, tok, builder, _ = _setup(omni_cfg, mixed_data)
    ids = builder.prompt_ids
    assert ids.count(SPEECH_SLOT) == SLOTS
    text = tok.decode([i for i in ids if i != SPEECH_SLOT])
    assert "You are a helpful language and speech assistant." in text
    assert "Please directly answer the questions in the user's speech." in text
    assert tok.convert_ids_to_tokens(builder.eot) == "<|im_end|>"
    other = PromptBuilder(tok, cfg.data.system_prompt, "Please answer the questions in the user's input speech.", SLOTS)
    assert "user's input speech" in tok.decode([i for i in other.prompt_ids if i >= 0])


def test_labels_cover_only_the_response_and_end_of_turn(mixed_data, omni_cfg):
    cfg, tok, builder, files = _setup(omni_cfg, mixed_data)
    batch = _stream(cfg, builder, files, stage=1)[0]
    n_prompt = len(builder.prompt_ids)
    for b in range(batch["input_ids"].size(0)):
        ids, labels, att = batch["input_ids"][b], batch["labels"][b], batch["attention_mask"][b]
        length = int(att.sum())
        supervised = (labels != IGNORE).nonzero().flatten()
        assert supervised.min() == n_prompt and supervised.max() == length - 1
        assert torch.equal(labels[n_prompt:length], ids[n_prompt:length])
        assert labels[length - 1] == builder.eot
        assert (labels[length:] == IGNORE).all() and (att[length:] == 0).all()
        resp = batch["response_mask"][b].nonzero().flatten()
        assert resp.tolist() == list(range(n_prompt, length - 1))  # response tokens, not end-of-turn
        assert tok.decode(ids[n_prompt:length - 1]).strip()
    assert batch["features"].shape[1:] == (128, 3000)
    assert "units" not in batch  # stage 1 does not need them


def test_units_are_padded_with_minus_100(tmp_path, omni_cfg):
    from omni.synthetic import make_rows, write_shards

    rows = make_rows(2, seed=5)
    rows[0]["response_units"] = rows[0]["response_units"][:7]
    write_shards(tmp_path, rows, shards=1)
    cfg, _, builder, files = _setup(omni_cfg, tmp_path, "data.shuffle_buffer=1")
    batch = _stream(cfg, builder, files)[0]
    units = batch["units"]
    lengths = sorted((units != IGNORE).sum(1).tolist())
    assert lengths == [7, 20] and units.shape[1] == 20
    short = int((units != IGNORE).sum(1).argmin())
    assert (units[short, 7:] == IGNORE).all() and (units[short, :7] >= 0).all()


def test_skipped_items_are_counted_per_stage(mixed_data, omni_cfg):
    cfg, _, builder, files = _setup(omni_cfg, mixed_data)
    counts = census(data_splits(mixed_data, cfg.data), builder, cfg.data)
    assert dict(counts[1].skipped) == {"audio_too_long": 1, "empty_response": 1}
    assert dict(counts[2].skipped) == {"audio_too_long": 1, "empty_response": 1, "no_units": 1}
    assert counts[1].train == 7 and counts[2].train == 6
    assert "skipped 3 (audio_too_long=1, empty_response=1, no_units=1)" in counts[2].message()
    seen = sum(len(b["ids"]) for b in _stream(cfg, builder, files, micro_batch_size=1))
    assert seen == counts[2].train


def test_held_out_split_is_stable_and_disjoint(mixed_data, omni_cfg):
    cfg, _, builder, files = _setup(omni_cfg, mixed_data, "data.eval_fraction=0.5")
    ids = [f"item-{i}" for i in range(400)]
    held = [i for i in ids if in_eval_split(i, 0.5)]
    assert 120 < len(held) < 280 and held == [i for i in ids if in_eval_split(i, 0.5)]
    train = {i for b in _stream(cfg, builder, files, micro_batch_size=1) for i in b["ids"]}
    evals = {i for b in _stream(cfg, builder, files, micro_batch_size=1, split="eval") for i in b["ids"]}
    assert not train & evals and len(train | evals) == 6
    assert all(in_eval_split(i, 0.5) for i in evals)


def test_a_validation_split_is_evaluated_and_nothing_is_held_out_of_train(tmp_path, omni_cfg, published_layout):
    from omni.synthetic import make_rows

    rows = make_rows(5, seed=8)
    published_layout(tmp_path, rows[:3], rows[3:])
    cfg, _, builder, files = _setup(omni_cfg, tmp_path, "data.eval_fraction=0.5")
    splits = data_splits(tmp_path, cfg.data)
    assert list(splits.train) == files == [str(tmp_path / "data" / "train-00000-of-00001.parquet")]
    assert list(splits.eval) == [str(tmp_path / "data" / "validation-00000-of-00001.parquet")]
    counts = census(splits, builder, cfg.data)
    assert (counts[2].train, counts[2].eval) == (3, 2)

    def ids(split):
        return {i for b in _stream(cfg, builder, splits.files(split), micro_batch_size=1, split=split,
                                   eval_fraction=splits.eval_fraction(split)) for i in b["ids"]}
    assert ids("train") == {r["id"] for r in rows[:3]} and ids("eval") == {r["id"] for r in rows[3:]}


def test_without_validation_rows_items_of_train_are_held_out(tmp_path, omni_cfg, published_layout):
    from omni.synthetic import make_rows

    published_layout(tmp_path, make_rows(6, seed=9), [])
    cfg, *_ = _setup(omni_cfg, tmp_path, "data.eval_fraction=0.5")
    splits = data_splits(tmp_path, cfg.data)
    assert splits.eval == splits.train and splits.eval_fraction("eval") == splits.eval_fraction("train") == 0.5


def test_order_is_fixed_by_seed_and_epoch_and_resumable(mixed_data, omni_cfg):
    cfg, _, builder, files = _setup(omni_cfg, mixed_data, "data.shuffle_buffer=3")
    order = lambda **kw: [i for b in _stream(cfg, builder, files, micro_batch_size=1, **kw) for i in b["ids"]]  # noqa: E731
    full = order()
    assert full == order() and sorted(full) == sorted(order(epoch=1))
    assert order(skip_items=4) == full[4:]
    r0, r1 = order(world=2, rank=0), order(world=2, rank=1)
    assert r0 == full[0::2] and r1 == full[1::2]


def test_eval_batches_keep_a_partial_last_micro_batch(mixed_data, omni_cfg):
    cfg, _, builder, files = _setup(omni_cfg, mixed_data, "data.eval_fraction=1.0")
    batches = _stream(cfg, builder, files, micro_batch_size=4, split="eval")
    assert [len(b["ids"]) for b in batches] == [4, 2]


def test_worker_processes_keep_the_order(mixed_data, omni_cfg):
    cfg, _, builder, files = _setup(omni_cfg, mixed_data, "data.shuffle_buffer=3")
    ds = MicroBatches(files, builder, cfg.data, stage=1, split="train", micro_batch_size=1, seed=0, epoch=0)
    alone = [b["ids"] for b in ds]
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    assert [b["ids"] for b in loader] == alone


def test_synthetic_rows_take_recipe_sizes():
    from omni.synthetic import make_rows

    rows = make_rows(4, seed=3, seconds=(5.0, 10.0), words=(30, 51), units_per_item=554)
    for row in rows:
        assert 5.0 <= row["instruction_duration"] <= 10.0
        assert 30 <= len(row["response"].split()) <= 50
        assert len(row["response_units"]) == 554
