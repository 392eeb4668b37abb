"""The CosyVoice adapter on the real upstream code with the random-weight CosyVoice-300M-SFT
stand-in (scripts/standins_cosyvoice.py), in CosyVoice's own environment (`make setup-cosyvoice`;
the `standins` fixture skips without it)."""
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-cosyvoice" / "bin" / "python"
HELPER = Path(__file__).with_name("cosyvoice_speak.py")


def speak_twice(folder: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    done = subprocess.run([str(PYTHON), str(HELPER), str(folder)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_sft_speakers_synthesize_through_the_speak_stage(standins):
    folder = standins / "standins" / "cosyvoice"
    assert {p.name for p in folder.iterdir()} >= {"cosyvoice.yaml", "llm.pt", "flow.pt", "hift.pt",
                                                   "campplus.onnx", "speech_tokenizer_v1.onnx", "spk2info.pt"}
    lines = [json.loads(line) for line in speak_twice(folder).splitlines() if line.startswith("{")]
    items = [x for x in lines if "id" in x]
    first = {x["id"]: x for x in items if x["attempt"] == 0}
    again = {x["id"]: x for x in items if x["attempt"] == 1}
    assert first["cv-2"]["failure"] == "empty_text"
    spoken = [x for x in first.values() if "failure" not in x]
    assert len(spoken) == 3
    assert all(x["engine"] == "cosyvoice" and x["sample_rate"] == 16000 and x["duration"] > 0.5 for x in spoken)
    assert {x["speaker"] for x in spoken} <= {"cosyvoice:英文男", "cosyvoice:英文女"}
    # Speaker and sampled speech tokens are seeded by the item id: a rerun is identical.
    assert first == {k: {**v, "attempt": 0} for k, v in again.items()}
    assert "cosyvoice" in lines[-1]["versions"]["cosyvoice:英文男"]
