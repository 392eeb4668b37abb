"""The LLaMA-Omni export that finalize writes, read the way LLaMA-Omni's omni_speech/infer/infer.py
reads its question file: json.load, then `speech`, `conversations[0].value` (the prompt) and
`conversations[1].value` (the reference answer) of each item."""
import json

import soundfile as sf
from package_upstream import TRAINED, response_text

PROMPT = "<speech>\nPlease directly answer the questions in the user's speech."


def test_question_files_read_as_the_inference_script_reads_them(package_run, tmp_path, monkeypatch):
    root, _ = package_run
    out = root / "export" / "llama_omni"
    monkeypatch.chdir(tmp_path)  # infer.py opens `speech` as written: it must resolve from any directory
    seen = []
    for question_file in sorted(out.glob("*/question.json")):
        with open(question_file) as f:
            questions = json.load(f)
        for item in questions:
            idx, prompt, answer = item["id"], item["conversations"][0]["value"], item["conversations"][1]["value"]
            assert (prompt, answer) == (PROMPT, response_text(idx))
            info = sf.info(item["speech"])
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16") and info.frames > 0
            assert item["tgt_units"] and all(0 <= u < 6 for u in item["tgt_units"])
            seen.append(idx)
        assert len(list((question_file.parent / "wavs").glob("*.wav"))) == len(questions)
    assert sorted(seen) == sorted(TRAINED)
