"""The trainer's model-FLOP count agrees with PyTorch's own FLOP counter on a real micro-batch
(eager attention, whose matmuls the counter sees; it does not count the CPU SDPA kernel)."""

import pytest
from torch.utils.flop_counter import FlopCounterMode

from omni.build import build_model, load_tokenizer
from omni.data import MicroBatches, data_splits
from omni.flops import FlopCounter, peak_flops
from omni.prompt import PromptBuilder


@pytest.mark.parametrize("stage", [1, 2])
def test_flop_count_matches_torch_counter(stage, tiny_data, omni_cfg):
    cfg = omni_cfg(tiny_data)
    tok = load_tokenizer(cfg.train.tokenizer)
    model = build_model(cfg.train, tok, seed=0)
    model.set_stage(stage)
    model.train()
    for config in (model.encoder.config, model.llm.config, *(la.self_attn.config for la in model.decoder.layers)):
        config._attn_implementation = "eager"
    builder = PromptBuilder(tok, cfg.data.system_prompt, cfg.data.instruction, model.speech_slots)
    files = data_splits(cfg.data_root, cfg.data).files("train")
    batch = next(iter(MicroBatches(files, builder, cfg.data, stage=stage, micro_batch_size=1, seed=0,
                                   eval_fraction=0.0)))  # one item: no padding for torch to count
    batch.pop("dropped")
    with FlopCounterMode(display=False) as counter:
        model(batch).backward()
    measured = counter.get_total_flops()
    counted = FlopCounter(model).micro_batch(stage, batch)
    assert counted == pytest.approx(measured, rel=0.05), (counted, measured)


def test_peak_is_known_for_datacenter_gpus_and_unknown_for_cpus():
    assert peak_flops("NVIDIA H200") == 989e12
    assert peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops(None) is None and peak_flops("cpu") is None


def test_a_padded_batch_costs_what_its_items_cost_alone(mixed_data, omni_cfg):
    cfg = omni_cfg(mixed_data)
    tok = load_tokenizer(cfg.train.tokenizer)
    model = build_model(cfg.train, tok, seed=0)
    builder = PromptBuilder(tok, cfg.data.system_prompt, cfg.data.instruction, model.speech_slots)
    files = data_splits(cfg.data_root, cfg.data).files("train")
    counter = FlopCounter(model)

    def batches(size):
        return iter(MicroBatches(files, builder, cfg.data, stage=2, micro_batch_size=size, seed=0, eval_fraction=0.0))

    pair = next(batches(2))
    alone = [b for b, _ in zip(batches(1), range(2))]
    assert pair["ids"] == [i for b in alone for i in b["ids"]]
    assert pair["attention_mask"].sum(1).unique().numel() == 2  # unequal lengths: the pair is padded
    for stage in (1, 2):
        assert counter.micro_batch(stage, pair) == pytest.approx(sum(counter.micro_batch(stage, b) for b in alone))
