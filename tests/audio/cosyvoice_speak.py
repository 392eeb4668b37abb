"""The speak stage over the random-weight CosyVoice-300M-SFT stand-in (scripts/standins_cosyvoice.py).

Runs inside .venv-cosyvoice (`make setup-cosyvoice`):
    python tests/audio/cosyvoice_speak.py DIR   # prints one JSON line per item
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from standins_cosyvoice import SPEAKERS  # noqa: E402


def speak(folder: Path) -> None:
    """The speak stage with two CosyVoice SFT voices over a few items, each item twice."""
    from stages.speak import SpeakSettings, SpeakStage

    voices = [{"engine": "cosyvoice", "model": str(folder), "speaker": s} for s in SPEAKERS]
    stage = SpeakStage("speak_instruction", SpeakSettings(voices=voices), {"seed": 1234})
    stage.setup()
    rows = [{"id": f"cv-{i}", "instruction_spoken": text} for i, text in
            enumerate(["Hey, how are you?", "Tell me a joke.", "", "What time is it?"])]
    for attempt in range(2):
        for result in stage.process(rows):
            if isinstance(result, dict):
                print(json.dumps({"attempt": attempt, "id": result["id"], "speaker": result["speaker"],
                                  "engine": result["engine"], "duration": result["duration"],
                                  "sample_rate": result["sample_rate"],
                                  "audio_sha256": hashlib.sha256(result["audio"]["bytes"]).hexdigest()}, ensure_ascii=False))
            else:
                print(json.dumps({"attempt": attempt, "id": result.id, "failure": result.reason}))
    print(json.dumps({"versions": stage.engine_versions()}, ensure_ascii=False))


if __name__ == "__main__":
    speak(Path(sys.argv[1]))
