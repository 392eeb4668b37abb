"""Greedy CTC decoding of unit logits, and cutting the units into streaming chunks."""

from __future__ import annotations

import torch


def greedy_units(logits: torch.Tensor, blank: int) -> list[int]:
    """Per-frame argmax, merge repeats, drop blanks. logits: [T, units+1]."""
    best = logits.argmax(-1).tolist()
    out, prev = [], None
    for u in best:
        if u != prev and u != blank:
            out.append(u)
        prev = u
    return out


class UnitStreamer:
    """Emits units in chunks of `omega` as the decoded unit sequence grows.

    The speech decoder is causal, so the frames of earlier states never change when more
    states arrive, and greedy CTC over a prefix of frames gives a prefix of the final unit
    sequence. Every unit emitted is therefore final.
    """

    def __init__(self, omega: int, emit):
        self.omega, self.emit, self.sent = max(1, int(omega)), emit, 0

    def update(self, units: list[int]) -> None:
        while len(units) - self.sent >= self.omega:
            self.emit(units[self.sent:self.sent + self.omega])
            self.sent += self.omega

    def finish(self, units: list[int]) -> None:
        self.update(units)
        if len(units) > self.sent:
            self.emit(units[self.sent:])
            self.sent = len(units)
