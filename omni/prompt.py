"""The LLM's own chat template around the speech: prompt ids, labels, response positions.

Conversation (recipe section 7):
  system    = `system_prompt`
  user      = `<speech>` + "\n" + `instruction`
  assistant = the text response, closed by the template's end-of-turn token

The rendered prompt is split at the speech placeholder and the placeholder becomes
`speech_slots` SPEECH_SLOT ids, which the model fills with speech embeddings. The prompt is the
same for every item, so it is tokenized once.

Dialogues: the earlier turns come before the spoken one as text turns of the same template
(user = the spoken instruction's text, assistant = its response), so those prompts are rendered
per item; when a length limit is given, the oldest turns are left out until the item fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import IGNORE, SPEECH_SLOT

_SENTINEL = "\u2063OMNI-END-PROBE\u2063"


def end_of_turn_id(tokenizer, configured: str | None = None) -> int:
    """The token closing an assistant turn: configured, or read off the chat template."""
    if configured:
        tid = tokenizer.convert_tokens_to_ids(configured)
        if tid is None or tid == tokenizer.unk_token_id:
            raise ValueError(f"end-of-turn token {configured!r} is not in the tokenizer")
        return int(tid)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _SENTINEL}], tokenize=False)
    tail = text.split(_SENTINEL, 1)[1] if _SENTINEL in text else ""
    ids = tokenizer(tail, add_special_tokens=False)["input_ids"] if tail.strip() else []
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    for tid in ids:
        if tid in special:
            return int(tid)
    if tokenizer.eos_token_id is None:
        raise ValueError("cannot tell the end-of-turn token; set train.tokenizer.end_of_turn")
    return int(tokenizer.eos_token_id)


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    response_start: int  # index of y_1
    response_len: int  # M, response tokens without end-of-turn


class PromptBuilder:
    """Builds the prompt once; turns a response into input ids, labels and response positions."""

    def __init__(self, tokenizer, system_prompt: str, instruction: str, speech_slots: int,
                 placeholder: str = "<speech>", end_of_turn: str | None = None):
        self.tokenizer = tokenizer
        self.eot = end_of_turn_id(tokenizer, end_of_turn)
        self.system_prompt, self.placeholder, self.speech_slots = system_prompt, placeholder, speech_slots
        self.speech_turn = f"{placeholder}\n{instruction}" if instruction else placeholder
        text = self._template([])
        if text.count(placeholder) != 1:
            raise ValueError(f"the rendered prompt must hold the placeholder {placeholder!r} once")
        self.prompt_ids = self._split(text)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eot

    def _template(self, context) -> str:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        for user, assistant in context:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        messages.append({"role": "user", "content": self.speech_turn})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _split(self, text: str) -> list[int]:
        # the last placeholder is the spoken turn's: earlier text turns may quote the marker
        before, _, after = text.rpartition(self.placeholder)
        enc = lambda s: self.tokenizer(s, add_special_tokens=False)["input_ids"] if s else []  # noqa: E731
        return enc(before) + [SPEECH_SLOT] * self.speech_slots + enc(after)

    def response_ids(self, response: str) -> list[int]:
        return self.tokenizer(response, add_special_tokens=False)["input_ids"]

    def count_response_tokens(self, responses: list[str]) -> list[int]:
        if not responses:
            return []
        return [len(x) for x in self.tokenizer(responses, add_special_tokens=False)["input_ids"]]

    def example(self, response_ids: list[int]) -> Example:
        """Labels cover the response and its end-of-turn token; -100 everywhere else."""
        return self._example(self.prompt_ids, response_ids)

    def dialogue_example(self, context, response_ids: list[int], max_length: int | None = None) -> tuple[Example, int]:
        """The example of a spoken turn after the text turns `context` [(user, assistant), ...],
        and how many of the oldest turns were left out to keep it within `max_length` tokens."""
        context, left_out = list(context), 0
        while True:
            prompt = self._split(self._template(context)) if context else self.prompt_ids
            if not context or max_length is None or len(prompt) + len(response_ids) + 1 <= max_length:
                return self._example(prompt, response_ids), left_out
            context, left_out = context[1:], left_out + 1

    def _example(self, prompt: list[int], response_ids: list[int]) -> Example:
        return Example(input_ids=prompt + response_ids + [self.eot],
                       labels=[IGNORE] * len(prompt) + response_ids + [self.eot],
                       response_start=len(prompt), response_len=len(response_ids))
