"""Dialogue shards in the trainer: earlier turns as text context, the trained turn as speech,
labels on its answer only (every turn's with `every`), context cut to the length limit, the
hold-out by dialogue, single-turn rows untouched, and training steps on dialogue shards."""

import pytest
import torch

from omni import audio as audio_io
from omni.build import load_tokenizer
from omni.config import UserError
from omni.data import MicroBatches, census, data_splits, in_eval_split, shard_files
from omni.metrics import read
from omni.model import IGNORE, SPEECH_SLOT
from omni.prompt import PromptBuilder
from omni.synthetic import make_dialogue_rows, make_rows, write_shards

SLOTS = 300


def _setup(omni_cfg, root, *overrides):
    cfg = omni_cfg(root, "data.shuffle_buffer=1", *overrides)
    tok = load_tokenizer(cfg.train.tokenizer)
    return cfg, tok, PromptBuilder(tok, cfg.data.system_prompt, cfg.data.instruction, SLOTS)


def _batches(cfg, builder, root, stage=2, micro=1, **kw):
    return list(MicroBatches(shard_files(root), builder, cfg.data, stage=stage, split="train",
                             micro_batch_size=micro, seed=0, epoch=0, **kw))


def _parts(tok, batch, b=0):
    """(text before the speech, speech slots, text after them up to the answer, supervised ids,
    the answer's ids the speech decoder reads)."""
    ids, labels = batch["input_ids"][b].tolist(), batch["labels"][b]
    first = ids.index(SPEECH_SLOT)
    last = max(i for i, t in enumerate(ids) if t == SPEECH_SLOT)
    start = int(batch["response_mask"][b].nonzero().min())
    supervised = labels[labels != IGNORE].tolist()
    answer = batch["input_ids"][b][batch["response_mask"][b]].tolist()
    return tok.decode(ids[:first]), last - first + 1, tok.decode(ids[last + 1:start]), supervised, answer


def _features(turn):
    return torch.from_numpy(audio_io.log_mel(audio_io.decode_bytes(turn["instruction_audio"]["bytes"]), 128))


@pytest.fixture(scope="module")
def three_turns(tmp_path_factory):
    root = tmp_path_factory.mktemp("omni-dialogue-3")
    rows = make_dialogue_rows(1, seed=11, num_turns=3)
    write_shards(root, rows, shards=1)
    return root, rows[0]


def test_earlier_turns_are_text_context_and_the_last_turn_is_speech(three_turns, omni_cfg):
    root, dialogue = three_turns
    cfg, tok, builder = _setup(omni_cfg, root)
    (batch,) = _batches(cfg, builder, root)
    turns = dialogue["turns"]
    assert batch["ids"] == [dialogue["id"]]
    before, slots, after, supervised, answer = _parts(tok, batch)
    assert slots == SLOTS and list(batch["input_ids"][0]).count(SPEECH_SLOT) == SLOTS
    places = [before.index(text) for t in turns[:2] for text in (t["instruction_spoken"], t["response"])]
    assert places == sorted(places)  # user 1, assistant 1, user 2, assistant 2, in order
    assert turns[2]["instruction_spoken"] not in before + after and turns[2]["response"] not in before
    assert "You are a helpful language and speech assistant." in before
    assert cfg.data.instruction in after
    # loss on the last answer and its end of turn only; the decoder reads the same answer
    assert supervised == builder.response_ids(turns[2]["response"]) + [builder.eot] == answer + [builder.eot]
    assert tok.decode(answer).strip() == turns[2]["response"]
    assert torch.equal(batch["features"][0], _features(turns[2]))
    assert batch["units"][0][batch["units"][0] != IGNORE].tolist() == turns[2]["response_units"]
    assert batch["dropped"] == {}


def test_every_turn_is_one_example_after_its_earlier_turns(three_turns, omni_cfg):
    root, dialogue = three_turns
    cfg, tok, builder = _setup(omni_cfg, root, "data.dialogue_turns=every")
    batches = _batches(cfg, builder, root)
    turns = dialogue["turns"]
    assert [b["ids"] for b in batches] == [[f"{dialogue['id']}-t{i}"] for i in (1, 2, 3)]
    for i, batch in enumerate(batches):
        before, _, after, supervised, _ = _parts(tok, batch)
        assert all(t["instruction_spoken"] in before and t["response"] in before for t in turns[:i])
        assert not any(t["instruction_spoken"] in before + after for t in turns[i:])
        assert supervised == builder.response_ids(turns[i]["response"]) + [builder.eot]
        assert torch.equal(batch["features"][0], _features(turns[i]))
        assert batch["units"][0][batch["units"][0] != IGNORE].tolist() == turns[i]["response_units"]
    first = batches[0]["input_ids"][0][:int(batches[0]["attention_mask"][0].sum())].tolist()
    assert first[:len(builder.prompt_ids)] == builder.prompt_ids  # turn 1 has no context: the single-turn prompt


def test_context_over_the_length_limit_loses_its_oldest_turns(three_turns, omni_cfg):
    root, dialogue = three_turns
    turns = dialogue["turns"]
    _, tok, builder = _setup(omni_cfg, root)
    answer = builder.response_ids(turns[2]["response"])
    context = [(t["instruction_spoken"], t["response"]) for t in turns[:2]]
    whole, none_left_out = builder.dialogue_example(context, answer)
    one_turn, _ = builder.dialogue_example(context[1:], answer)
    assert none_left_out == 0 and len(one_turn.input_ids) < len(whole.input_ids)

    cfg, _, _ = _setup(omni_cfg, root, f"data.max_length={len(one_turn.input_ids)}")
    (batch,) = _batches(cfg, builder, root)
    before = _parts(tok, batch)[0]
    assert turns[1]["instruction_spoken"] in before and turns[0]["instruction_spoken"] not in before
    assert batch["input_ids"][0][:len(one_turn.input_ids)].tolist() == one_turn.input_ids
    assert batch["dropped"] == {"context_turns": 1}

    cfg, _, _ = _setup(omni_cfg, root, "data.max_length=10")  # no context fits: the single-turn prompt
    (batch,) = _batches(cfg, builder, root)
    assert batch["input_ids"][0][:len(builder.prompt_ids)].tolist() == builder.prompt_ids
    assert batch["response_mask"][0].nonzero().min() == len(builder.prompt_ids)
    assert batch["dropped"] == {"context_turns": 2}


def test_census_counts_examples_and_holds_out_whole_dialogues(tmp_path, omni_cfg):
    rows = make_dialogue_rows(8, seed=12, num_turns=[1, 2, 3, 4, 5, 1, 2, 0])  # the last one has no turns
    write_shards(tmp_path, rows, shards=2)
    for mode, usable in (("last", 7), ("every", 18)):
        cfg, _, builder = _setup(omni_cfg, tmp_path, f"data.dialogue_turns={mode}", "data.eval_fraction=0.5")
        counts = census(data_splits(tmp_path, cfg.data), builder, cfg.data)
        assert counts[2].train + counts[2].eval == usable and dict(counts[2].skipped) == {"no_turns": 1}
        kw = dict(stage=2, micro_batch_size=1, seed=0, epoch=0)
        train = [i for b in MicroBatches(shard_files(tmp_path), builder, cfg.data, split="train", **kw) for i in b["ids"]]
        held = [i for b in MicroBatches(shard_files(tmp_path), builder, cfg.data, split="eval", **kw) for i in b["ids"]]
        assert (len(train), len(held)) == (counts[2].train, counts[2].eval)
        if mode == "every":  # example ids are <dialogue id>-t<turn>
            train, held = ([i.rsplit("-t", 1)[0] for i in ids] for ids in (train, held))
        assert train and held and not set(train) & set(held)
        assert all(in_eval_split(i, 0.5) for i in held) and not any(in_eval_split(i, 0.5) for i in train)


def test_single_turn_rows_and_one_turn_dialogues_give_the_same_batches(tmp_path, omni_cfg):
    rows = make_rows(3, seed=13)
    dialogues = [{"id": r["id"], "source": "synthetic", "num_turns": 1, "instruction_speaker": "v",
                  "response_speaker": "r", "turns": [{**{k: r[k] for k in (
                      "instruction", "instruction_spoken", "response", "instruction_audio", "response_audio",
                      "response_units", "instruction_duration", "response_duration", "response_wer")},
                      "instruction_wer": 0.0, "meaning_similarity": None, "answer_similarity": None}]}
                 for r in rows]
    write_shards(tmp_path / "single", rows, shards=1)
    write_shards(tmp_path / "dialogue", dialogues, shards=1)
    cfg, _, builder = _setup(omni_cfg, tmp_path / "single")
    reference = _batches(cfg, builder, tmp_path / "single", micro=2)
    assert reference[0]["input_ids"][0][:len(builder.prompt_ids)].tolist() == builder.prompt_ids
    runs = [("single", "data.dialogue_turns=every"), ("single", "data.max_length=10"), ("dialogue",)]
    for where, *overrides in runs:
        cfg, _, _ = _setup(omni_cfg, tmp_path / where, *overrides)
        got = _batches(cfg, builder, tmp_path / where, micro=2)
        assert len(got) == len(reference)
        for a, b in zip(got, reference):
            assert a.keys() == b.keys() and a["ids"] == b["ids"] and a["dropped"] == b["dropped"] == {}
            assert all(torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k])), (where, overrides)


def test_an_unknown_dialogue_turns_setting_is_a_user_error(three_turns, omni_cfg):
    root, _ = three_turns
    cfg, _, builder = _setup(omni_cfg, root, "data.dialogue_turns=all")
    with pytest.raises(UserError, match="data.dialogue_turns=all: use last or every"):
        census(data_splits(root, cfg.data), builder, cfg.data)


def test_both_stages_train_on_dialogue_shards(tmp_path, omni_cfg):
    from omni.train import train

    write_shards(tmp_path, make_dialogue_rows(4, seed=14, num_turns=[1, 3, 5, 2]), shards=2)
    run = train(omni_cfg(tmp_path, "run_name=dialogues", "data.dialogue_turns=every", "max_steps=2",
                         "data.max_length=400"))
    rows = [r for r in read(run) if r["split"] == "train"]
    assert [(int(r["stage"]), int(r["step"])) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(0 < float(r["loss"]) < float("inf") and int(r["items"]) == 2 for r in rows)
    assert "stage 1: 11 training items" in (run / "train.log").read_text()
