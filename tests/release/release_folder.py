"""A tiny copy of the InstructS2S-200K release, laid out as the Hub's: the list
`instruct_en_200k_data_cosy2.json` with `speech` under `data/multiturn_instruction/en/wav/`, the
wavs unpacked to `en/wav/<id>/` beside it, CosyVoice-2-style unit strings on the gpt turns."""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16_000
# Conversation id -> its turns (user text, assistant text, assistant units).
CONVERSATIONS = {
    "instruct_en_1": [("Hey, what's the capital of France?", "The capital of France is Paris.", [12, 12, 6560, 3])],
    "instruct_en_2": [("So, um, how do I boil an egg?", "Put it in boiling water for about eight minutes.", [5, 4299, 4299]),
                      ("And if I want it soft?", "Then take it out after six minutes.", [60, 3651]),
                      ("Thanks, like, a lot!", "You're welcome.", [7])],
    "instruct_en_3": [("Can you name a blue fruit?", "Blueberries are blue.", [1, 2, 3]),
                      ("And a red one?", "Strawberries are red.", [2958])],
}
MISSING = ("instruct_en_2", 2, "assistant")  # this wav is not in the folder


def clip(name: str) -> np.ndarray:
    """A short int16-exact clip, different for every file name."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    samples = rng.integers(-8000, 8000, size=RATE // 4 + len(name) * 37, dtype=np.int16)
    return samples.astype(np.float32) / 32768


def speech_path(conversation: str, turn: int, side: str) -> str:
    return f"data/multiturn_instruction/en/wav/{conversation}/{conversation}-{turn}-{side}.wav"


def build(root: Path) -> dict[str, np.ndarray]:
    """Write the folder; returns each written wav's samples by its file name."""
    items, clips = [], {}
    for conversation, turns in CONVERSATIONS.items():
        pairs = []
        for turn, (user, assistant, units) in enumerate(turns, 1):
            for side, role, text, unit in (("user", "human", user, None),
                                           ("assistant", "gpt", assistant, "".join(f"<{u}>" for u in units))):
                speech = speech_path(conversation, turn, side)
                pairs.append({"from": role, "speech": speech, "text": text, "unit": unit})
                if (conversation, turn, side) == MISSING:
                    continue
                name = Path(speech).name
                clips[name] = clip(name)
                wav = root / "en" / "wav" / conversation / name
                wav.parent.mkdir(parents=True, exist_ok=True)
                sf.write(wav, clips[name], RATE, subtype="PCM_16")
        items.append({"id": conversation, "conversation": pairs})
    (root / "instruct_en_200k_data_cosy2.json").write_text(json.dumps(items, indent=2))
    return clips
