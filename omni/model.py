"""The LLaMA-Omni model in one file.

    log-mel [B, 128, 3000]
      -> Whisper encoder (frozen)                 [B, 1500, D_enc]
      -> Adaptor: stack k=5 frames, MLP           [B, 300, H]      (the speech embeddings)
      -> placed into the prompt's speech slots, causal LLM  -> hidden states [B, L, H]
           -> LM head: text response (stage 1, cross-entropy)
           -> SpeechDecoder on the response states: upsample x25, 2 Llama layers,
              1001-way output (1000 units + blank)     (stage 2, CTC)

Alignment of the speech decoder (recipe section 8, "Open")
----------------------------------------------------------
For a response y_1..y_M followed by the end-of-turn token, the decoder reads the LLM's
last-layer hidden state *at the position where each response token is the input*:
h(y_1), ..., h(y_M). The end-of-turn token is not read. Training and generation use exactly
these positions:

* training: `decoder_inputs` gathers the states at the response-token positions
  (`response_mask` from the data marks them);
* generation: `generate` feeds each sampled token back into the LLM and keeps the state that
  comes out at that token's position. The forward pass that yields h(y_i) is the same one that
  predicts y_{i+1}, so no extra LLM work is needed, and h(y_M) is ready when end-of-turn is
  sampled.

Why not the released code's generation-time choice (h(prompt_last), h(y_1)..h(y_{M-1}), the
states that *predict* each token)? Those states have not seen the token they are asked to
voice; under sampling they cannot know which token was drawn. The state at a token's own
position has seen it. Training on one set of positions and generating from the other (the
released code's one-position shift) feeds the decoder inputs it never saw in training.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

SPEECH_SLOT = -200  # input id of a prompt position that receives one speech embedding
IGNORE = -100  # label / unit padding value


class Adaptor(nn.Module):
    """Concatenate every k encoder frames (leftover frames dropped), then Linear-ReLU-Linear."""

    def __init__(self, enc_dim: int, k: int, hidden: int, out_dim: int):
        super().__init__()
        self.k = k
        self.proj = nn.Sequential(nn.Linear(enc_dim * k, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, d = frames.shape
        t = t // self.k * self.k
        stacked = frames[:, :t].reshape(b, t // self.k, d * self.k)
        return self.proj(stacked)


class SpeechDecoder(nn.Module):
    """Non-autoregressive unit decoder: upsample, causal Llama layers, 1000 units + blank."""

    def __init__(self, in_dim: int, hidden: int, layers: int, heads: int, ffn: int,
                 units: int = 1000, upsample: int = 25):
        super().__init__()
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import (
            LlamaDecoderLayer,
            LlamaRMSNorm,
            LlamaRotaryEmbedding,
        )

        cfg = LlamaConfig(hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=heads,
                          max_position_embeddings=1 << 16, vocab_size=units + 1)
        cfg._attn_implementation = "sdpa"  # with no mask, sdpa attends causally
        self.units, self.blank, self.upsample_factor = units, units, upsample
        self.in_proj = nn.Linear(in_dim, hidden)
        self.layers = nn.ModuleList(LlamaDecoderLayer(cfg, i) for i in range(layers))
        self.rotary = LlamaRotaryEmbedding(cfg)
        self.norm = LlamaRMSNorm(hidden, eps=cfg.rms_norm_eps)
        self.out_proj = nn.Linear(hidden, units + 1)

    def upsample(self, states, lengths, target_lengths=None):
        """Spread each item's M states over max(r*M, U) frames (U only known in training).

        With r*M frames this is plain repetition (state j // r for frame j); when the target
        has more units than r*M, states are stretched evenly so CTC stays feasible.
        """
        frames = lengths * self.upsample_factor
        if target_lengths is not None:
            frames = torch.maximum(frames, target_lengths)
        t = int(frames.max().item()) if frames.numel() else 0
        j = torch.arange(t, device=states.device)
        idx = (j[None, :] * lengths[:, None]) // frames.clamp(min=1)[:, None]
        idx = torch.minimum(idx, (lengths - 1).clamp(min=0)[:, None])
        out = states.gather(1, idx.unsqueeze(-1).expand(-1, -1, states.size(-1)))
        return out, frames

    def forward(self, states, lengths, target_lengths=None):
        """states [B, M, H_llm] -> logits [B, T, units+1] and frame counts [B]."""
        x, frames = self.upsample(states, lengths, target_lengths)
        x = self.in_proj(x)
        pos = torch.arange(x.size(1), device=x.device)[None]
        cos_sin = self.rotary(x, pos)
        for layer in self.layers:
            x = layer(x, attention_mask=None, position_ids=pos, position_embeddings=cos_sin)
        return self.out_proj(self.norm(x)), frames


def ctc_unit_loss(logits, frames, units, blank):
    """CTC summed over the batch, divided by the number of target units; infinities zeroed."""
    unit_lengths = (units != IGNORE).sum(1)
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)
    targets = units[units != IGNORE]
    loss = F.ctc_loss(log_probs, targets, frames, unit_lengths, blank=blank,
                      reduction="sum", zero_infinity=True)
    return loss / unit_lengths.sum().clamp(min=1)


class OmniModel(nn.Module):
    """Whisper encoder + adaptor + causal LLM + CTC speech decoder."""

    def __init__(self, encoder: nn.Module, adaptor: Adaptor, llm: nn.Module, decoder: SpeechDecoder):
        super().__init__()
        self.encoder, self.adaptor, self.llm, self.decoder = encoder, adaptor, llm, decoder
        self.stage = 1

    @property
    def speech_slots(self) -> int:
        """Speech embeddings per item: encoder frames // k (300 for Whisper and k=5)."""
        return self.encoder.config.max_source_positions // self.adaptor.k

    def set_stage(self, stage: int) -> None:
        """Stage 1 trains adaptor + LLM; stage 2 trains only the speech decoder."""
        self.stage = stage
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        for m in (self.adaptor, self.llm):
            for p in m.parameters():
                p.requires_grad_(stage == 1)
        for p in self.decoder.parameters():
            p.requires_grad_(stage == 2)

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # frozen, always in inference mode
        if self.stage == 2:
            self.adaptor.eval()
            self.llm.eval()
        return self

    # -- the speech-to-LLM path ---------------------------------------------------------
    def encode_speech(self, features: torch.Tensor) -> torch.Tensor:
        enc_dtype = next(self.encoder.parameters()).dtype
        with torch.no_grad():
            frames = self.encoder(features.to(enc_dtype)).last_hidden_state
        return self.adaptor(frames.to(self.adaptor.proj[0].weight.dtype))

    def embed(self, input_ids: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the SPEECH_SLOT positions filled by the speech embeddings in order."""
        slots = input_ids == SPEECH_SLOT
        emb = self.llm.get_input_embeddings()(input_ids.clamp(min=0))
        if not bool((slots.sum(1) == speech.size(1)).all()):
            raise ValueError(f"each item needs {speech.size(1)} speech slots, got {slots.sum(1).tolist()}")
        return emb.masked_scatter(slots.unsqueeze(-1), speech.to(emb.dtype))

    def hidden_states(self, input_ids, attention_mask, features) -> torch.Tensor:
        """Last-layer LLM hidden states [B, L, H] (after the final norm)."""
        emb = self.embed(input_ids, self.encode_speech(features))
        return self.llm.get_decoder()(inputs_embeds=emb, attention_mask=attention_mask,
                                      use_cache=False).last_hidden_state

    # -- losses ---------------------------------------------------------------------------
    def text_loss(self, hidden, labels) -> torch.Tensor:
        """Next-token cross-entropy on the labelled positions (response + end-of-turn)."""
        target = labels[:, 1:]
        keep = target != IGNORE
        logits = self.llm.get_output_embeddings()(hidden[:, :-1][keep])
        return F.cross_entropy(logits.float(), target[keep])

    @staticmethod
    def decoder_inputs(hidden, response_mask):
        """The alignment: states at the response-token positions, packed left -> [B, M, H], lengths."""
        lengths = response_mask.sum(1)
        m = int(lengths.max().item()) if lengths.numel() else 0
        order = torch.argsort((~response_mask).to(torch.int8), dim=1, stable=True)[:, :m]
        states = hidden.gather(1, order.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))
        valid = torch.arange(m, device=hidden.device)[None] < lengths[:, None]
        return states * valid.unsqueeze(-1).to(states.dtype), lengths

    def unit_loss(self, hidden, response_mask, units) -> torch.Tensor:
        states, lengths = self.decoder_inputs(hidden, response_mask)
        logits, frames = self.decoder(states, lengths, (units != IGNORE).sum(1))
        return ctc_unit_loss(logits, frames, units, self.decoder.blank)

    def forward(self, batch: dict) -> torch.Tensor:
        """The loss of the current stage for one micro-batch."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.stage == 1):
            hidden = self.hidden_states(batch["input_ids"], batch["attention_mask"], batch["features"])
        if self.stage == 1:
            return self.text_loss(hidden, batch["labels"])
        return self.unit_loss(hidden.detach(), batch["response_mask"], batch["units"])

    # -- generation -----------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, prompt_ids, features, end_of_turn: int, max_new_tokens: int = 256,
                 on_state=None):
        """Greedy text generation that also returns the decoder inputs h(y_1..y_M).

        prompt_ids [1, L] (with SPEECH_SLOT positions), features [1, 128, 3000].
        on_state(tokens, states) is called after each new state (for streaming units).
        """
        from transformers import DynamicCache

        body = self.llm.get_decoder()
        head = self.llm.get_output_embeddings()
        embed = self.llm.get_input_embeddings()
        cache = DynamicCache()
        # positional: (input_ids, attention_mask, position_ids, cache, inputs_embeds)
        h = body(None, None, None, cache, self.embed(prompt_ids, self.encode_speech(features)),
                 use_cache=True).last_hidden_state
        nxt = int(head(h[:, -1]).argmax(-1).item())
        tokens, states = [], []
        while nxt != end_of_turn and len(tokens) < max_new_tokens:
            tokens.append(nxt)
            ids = torch.tensor([[nxt]], device=prompt_ids.device)
            h = body(None, None, None, cache, embed(ids), use_cache=True).last_hidden_state
            states.append(h[0, -1])  # h(y_i): the state at y_i's own position
            if on_state is not None:
                on_state(tokens, torch.stack(states))
            nxt = int(head(h[:, -1]).argmax(-1).item())
        width = self.llm.config.hidden_size
        out = torch.stack(states) if states else h.new_zeros(0, width)
        return tokens, out

    @torch.no_grad()
    def unit_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Decoder logits [T, units+1] for the states [M, H] of one response (inference)."""
        if states.size(0) == 0:
            return states.new_zeros(0, self.decoder.units + 1)
        lengths = torch.tensor([states.size(0)], device=states.device)
        logits, _ = self.decoder(states[None].to(self.decoder.in_proj.weight.dtype), lengths)
        return logits[0]
