"""The LLaMA-Omni export: a JSON list of conversations and 16 kHz wavs (recipe.md section 7)."""
import json

import soundfile as sf
from package_upstream import TRAINED, response_text


def test_llama_omni_items(package_run):
    root, _ = package_run
    out = root / "export" / "llama_omni"
    items = json.loads((out / "instructs2s.json").read_text())
    assert sorted(i["id"] for i in items) == sorted(TRAINED)
    for item in items:
        human, gpt = item["conversations"]
        assert human == {"from": "human", "value": "<speech>\nPlease directly answer the questions in the user's speech."}
        assert gpt == {"from": "gpt", "value": response_text(item["id"])}
        assert item["tgt_units"] and all(0 <= u < 6 for u in item["tgt_units"])
        info = sf.info(out / item["speech"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert len(list((out / "wavs").glob("*.wav"))) == len(TRAINED)
