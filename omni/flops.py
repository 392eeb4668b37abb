"""Model FLOPs of one training micro-batch, and model FLOPs utilization (MFU).

Counted (model FLOPs, as in the PaLM paper's appendix B: recomputation under activation
checkpointing is not counted, so MFU does not reward it):

* a matmul weight of N parameters costs 2N FLOPs per position in the forward pass and 4N more in
  the backward pass of a trained part (6N in all); a frozen part that only runs forward costs 2N;
* self-attention costs 4 x layers x width x sequence length per position forward (scores and
  weighted sum; the full square, as is usual, also for the LLM's causal attention), three times
  that when trained;
* positions: the Whisper encoder runs on 1500 frames per item (its first convolution on 3000), the adaptor on its 300 speech
  embeddings, the LLM body on every non-padding position, the LM head only on the labelled
  response positions (the loss is computed there alone), and the speech decoder on `upsample`
  frames per response token. Input embeddings are lookups (0 FLOPs); norms, activations and the
  CTC loss are left out (under 1% at recipe shapes).
"""

from __future__ import annotations

import torch

from .model import IGNORE, OmniModel

# Dense bf16 tensor-core peak FLOP/s per GPU (vendor datasheets, without sparsity), matched as a
# substring of torch.cuda.get_device_name(); the first match wins.
PEAK_BF16 = (
    ("H200 NVL", 835e12),
    ("H100 NVL", 835e12),
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
)


def peak_flops(device_name: str | None) -> float | None:
    """The bf16 dense peak of a GPU by name, None when unknown (CPUs included)."""
    for key, peak in PEAK_BF16:
        if device_name and key in device_name:
            return peak
    return None


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class FlopCounter:
    """Parameter counts of the model's parts, read once; `micro_batch` prices one micro-batch."""

    def __init__(self, model: OmniModel):
        llm = model.llm
        embed, head = llm.get_input_embeddings(), llm.get_output_embeddings()
        shared = embed.weight is head.weight
        self.head = head.weight.numel()
        self.body = _params(llm) - embed.weight.numel() - (0 if shared else self.head)
        # conv1 of Whisper's front end runs at the mel rate (twice the 1500 frames): counted twice;
        # its position table is a lookup
        enc = model.encoder
        self.encoder = _params(enc) + enc.conv1.weight.numel() - enc.embed_positions.weight.numel()
        self.adaptor, self.decoder = _params(model.adaptor), _params(model.decoder)
        ec, lc = model.encoder.config, llm.config
        self.enc_frames = int(ec.max_source_positions)
        self.enc_attn = 4 * int(ec.encoder_layers) * int(ec.d_model)
        self.llm_attn = 4 * int(lc.num_hidden_layers) * int(lc.num_attention_heads) * int(
            getattr(lc, "head_dim", None) or lc.hidden_size // lc.num_attention_heads)
        self.dec_attn = 4 * len(model.decoder.layers) * int(model.decoder.in_proj.out_features)
        self.slots, self.upsample = model.speech_slots, int(model.decoder.upsample_factor)

    def micro_batch(self, stage: int, batch: dict) -> float:
        items = len(batch["ids"])
        lengths = batch["attention_mask"].sum(1).double()
        tokens = float(lengths.sum())
        seq_sq = float((lengths ** 2).sum())  # sum over items of L^2 (attention is per item)
        enc = items * (2 * self.encoder * self.enc_frames + self.enc_attn * self.enc_frames ** 2)
        if stage == 1:
            labelled = float((batch["labels"] != IGNORE).sum())
            return (enc + 6 * self.adaptor * self.slots * items + 6 * self.body * tokens
                    + 3 * self.llm_attn * seq_sq + 6 * self.head * labelled)
        frames = batch["response_mask"].sum(1).double() * self.upsample
        return (enc + 2 * self.adaptor * self.slots * items + 2 * self.body * tokens + self.llm_attn * seq_sq
                + 6 * self.decoder * float(frames.sum()) + 3 * self.dec_attn * float((frames ** 2).sum()))
