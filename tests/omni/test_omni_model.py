"""Model parts: adaptor, upsampling, causality, CTC loss, and the decoder alignment."""

import pytest
import torch

from omni.build import build_model, load_tokenizer
from omni.ctc import UnitStreamer, greedy_units
from omni.model import IGNORE, Adaptor, SpeechDecoder, ctc_unit_loss
from omni.prompt import PromptBuilder


def test_adaptor_stacks_five_frames_and_drops_leftovers():
    a = Adaptor(enc_dim=8, k=5, hidden=16, out_dim=4)
    assert a(torch.randn(2, 1500, 8)).shape == (2, 300, 4)
    assert a(torch.randn(1, 1504, 8)).shape == (1, 300, 4)
    x = torch.randn(1, 10, 8)
    expected = a.proj(x.reshape(1, 2, 40))
    assert torch.allclose(a(x), expected)


def _decoder():
    torch.manual_seed(0)
    return SpeechDecoder(in_dim=12, hidden=16, layers=2, heads=2, ffn=32, units=1000, upsample=25)


def test_upsampling_repeats_each_state_25_times_or_stretches_for_long_targets():
    dec = _decoder()
    states = torch.arange(6.0).reshape(1, 3, 2).repeat(2, 1, 1)
    lengths = torch.tensor([3, 2])
    frames, n = dec.upsample(states, lengths)
    assert n.tolist() == [75, 50]
    assert torch.equal(frames[0], states[0].repeat_interleave(25, dim=0))
    frames, n = dec.upsample(states, lengths, target_lengths=torch.tensor([10, 80]))
    assert n.tolist() == [75, 80]
    idx = frames[1, :80, 0] / 2  # state index of each frame of item 2
    assert idx[:40].eq(0).all() and idx[40:].eq(1).all()


def test_speech_decoder_is_causal():
    dec = _decoder().eval()
    s = torch.randn(1, 4, 12)
    changed = s.clone()
    changed[0, 3] += 1.0
    n = torch.tensor([4])
    a, _ = dec(s, n)
    b, _ = dec(changed, n)
    assert torch.allclose(a[0, :75], b[0, :75], atol=1e-6)
    assert not torch.allclose(a[0, 75:], b[0, 75:])


def test_ctc_loss_is_normalised_by_units_and_zeroes_infeasible_items():
    torch.manual_seed(0)
    logits = torch.randn(2, 50, 1001)
    units = torch.tensor([[1, 2, 3, IGNORE], [4, 5, 6, 7]])
    both = ctc_unit_loss(logits, torch.tensor([50, 50]), units, blank=1000)
    per = [torch.nn.functional.ctc_loss(logits[i].log_softmax(-1)[:, None], units[i][units[i] >= 0][None],
                                        torch.tensor([50]), torch.tensor([int((units[i] >= 0).sum())]),
                                        blank=1000, reduction="sum") for i in range(2)]
    assert both.item() == pytest.approx((per[0] + per[1]).item() / 7, rel=1e-5)
    infeasible = ctc_unit_loss(logits, torch.tensor([2, 50]), units, blank=1000)
    assert torch.isfinite(infeasible)
    assert infeasible.item() == pytest.approx(per[1].item() / 7, rel=1e-5)


def test_greedy_ctc_merges_repeats_and_drops_blanks():
    seq = [5, 5, 1000, 5, 7, 7, 1000, 1000, 2]
    logits = torch.nn.functional.one_hot(torch.tensor(seq), 1001).float()
    assert greedy_units(logits, blank=1000) == [5, 5, 7, 2]


def test_streamer_emits_chunks_of_omega_then_the_rest():
    chunks = []
    s = UnitStreamer(3, chunks.append)
    s.update([1, 2])
    s.update([1, 2, 3, 4])
    s.finish([1, 2, 3, 4, 5, 6, 7, 8])
    assert chunks == [[1, 2, 3], [4, 5, 6], [7, 8]]


@pytest.fixture(scope="module")
def tiny_model(tiny_data, omni_cfg):
    cfg = omni_cfg(tiny_data)
    tok = load_tokenizer(cfg.train.tokenizer)
    model = build_model(cfg.train, tok, seed=3).eval()
    builder = PromptBuilder(tok, cfg.data.system_prompt, cfg.data.instruction, model.speech_slots)
    return model, builder


def test_decoder_sees_the_same_states_in_generation_as_in_training(tiny_model):
    model, builder = tiny_model
    torch.manual_seed(0)
    feats = torch.randn(1, 128, 3000)
    prompt = torch.tensor([builder.prompt_ids])
    tokens, gen_states = model.generate(prompt, feats, end_of_turn=builder.eot, max_new_tokens=6)
    assert len(tokens) > 0 and gen_states.shape[0] == len(tokens)

    # the same token sequence as a training item: response = generated tokens, then end-of-turn
    ex = builder.example(tokens)
    ids = torch.tensor([ex.input_ids])
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[0, ex.response_start:ex.response_start + ex.response_len] = True
    with torch.no_grad():
        hidden = model.hidden_states(ids, torch.ones_like(ids), feats)
    train_states, lengths = model.decoder_inputs(hidden, mask)
    assert lengths.tolist() == [len(tokens)]
    assert torch.allclose(train_states[0], gen_states, atol=1e-4)
    # and those are the states at the response tokens' own positions, not the predicting ones
    assert torch.allclose(train_states[0], hidden[0, ex.response_start:ex.response_start + len(tokens)])
    assert not torch.allclose(gen_states, hidden[0, ex.response_start - 1:ex.response_start - 1 + len(tokens)],
                              atol=1e-4)
    # same decoder frames, hence the same units, in both paths
    with torch.no_grad():
        train_logits, _ = model.decoder(train_states, lengths)
    assert torch.allclose(train_logits[0], model.unit_logits(gen_states), atol=1e-4)
