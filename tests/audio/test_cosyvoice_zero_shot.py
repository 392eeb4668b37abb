"""Zero-shot CosyVoice voices (`speaker: prompt:/path/clip.wav`) on the real upstream code with the
random-weight stand-ins of scripts/standins_cosyvoice.py: CosyVoice-300M's layout (`--zero-shot`)
and CosyVoice2-0.5B's (`--cosyvoice2`), both with runnable speaker embedding and speech tokenizer
graphs and seeded prompt clips with transcripts, in CosyVoice's own environment
(`make setup-cosyvoice`; skipped without it).

The same file is the child run by that environment's interpreter:
    .venv-cosyvoice/bin/python tests/audio/test_cosyvoice_zero_shot.py MODEL_DIR   # one JSON line per result
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-cosyvoice" / "bin" / "python"
TEXT = "Tell me something about the moon."


def synthesize_all(folder: Path) -> None:
    """Two prompt voices of one shared engine, each seed twice, and a missing clip; one JSON line each."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from stages.speak import SpeakSettings, SpeakStage

    bank = folder / "voice_bank"
    voices = [{"engine": "cosyvoice", "model": str(folder), "speaker": f"prompt:{bank / name}.wav", "name": name}
              for name in ("male_1", "female_1")]
    stage = SpeakStage("speak_instruction", SpeakSettings(voices=voices, voice_by="dialogue_id"), {"seed": 7})
    stage.setup()
    engine = next(iter(stage.engines.values()))
    print(json.dumps({"engines": len(stage.engines), "versions": stage.engine_versions(),
                      "model_class": type(engine.model).__name__}))
    for voice in voices:
        for seed in (1, 1, 2):
            audio, rate = engine.synthesize(TEXT, voice["speaker"], seed)
            print(json.dumps({"voice": voice["name"], "seed": seed, "rate": rate, "samples": int(audio.size),
                              "finite": bool(np.isfinite(audio).all()), "peak": float(np.abs(audio).max(initial=0.0)),
                              "sha256": hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()}))
    rows = [{"id": f"d{i}-t1", "dialogue_id": f"d{i}", "instruction_spoken": TEXT} for i in range(4)]
    for result in stage.process(rows):
        print(json.dumps({"row": result["id"], "speaker": result["speaker"], "duration": result["duration"]}))
    try:
        engine.check_speaker(f"prompt:{bank / 'nobody.wav'}")
    except Exception as exc:  # the one-line error the run would stop with
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))


def child_env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


def run_child(folder: Path) -> list[dict]:
    done = subprocess.run([str(PYTHON), __file__, str(folder)], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


if __name__ == "__main__":
    synthesize_all(Path(sys.argv[1]))
else:
    import pytest

    from pipeline.errors import MissingModelError
    from stages.engines.cosyvoice_tts import prompt_files

    LAYOUTS = {"--zero-shot": ("CosyVoice", 22050), "--cosyvoice2": ("CosyVoice2", 24000)}  # flag -> (class, rate)

    # The 300M layout clones through the same frontend code: `make test-nightly` runs it.
    @pytest.fixture(scope="module", params=["--cosyvoice2", pytest.param("--zero-shot", marks=pytest.mark.nightly)])
    def zero_shot_standin(request, tmp_path_factory):
        if not PYTHON.exists():
            pytest.skip("CosyVoice environment absent: run `make setup-cosyvoice` (CI does)")
        probe = subprocess.run([str(PYTHON), "-c", "import torchaudio; torchaudio.transforms.Resample(16000, 22050)"],
                               env=child_env(), capture_output=True, text=True, timeout=120)
        if probe.returncode != 0:
            pytest.skip("the CosyVoice environment's torchaudio cannot resample prompts (an older stand-in): "
                        "rerun `make setup-cosyvoice`")
        folder = tmp_path_factory.mktemp("cosyvoice-zero-shot")
        done = subprocess.run([str(PYTHON), str(ROOT / "scripts" / "standins_cosyvoice.py"), str(folder), "0", request.param],
                              cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return folder, *LAYOUTS[request.param]

    def test_prompt_voices_clone_seeded_through_one_shared_engine(zero_shot_standin):
        folder, model_class, rate = zero_shot_standin
        lines = run_child(folder)
        header = lines[0]
        assert header["engines"] == 1  # both voices of the bank share one loaded model
        assert header["model_class"] == model_class  # cosyvoice2.yaml in the folder -> CosyVoice2
        assert "cosyvoice" in header["versions"]["male_1"]
        takes = [x for x in lines if "seed" in x]
        assert len(takes) == 6
        assert all(x["rate"] == rate and x["samples"] > rate // 10 and x["finite"] and x["peak"] > 0 for x in takes)
        by = {}
        for x in takes:
            by.setdefault((x["voice"], x["seed"]), []).append(x["sha256"])
        assert by[("male_1", 1)][0] == by[("male_1", 1)][1]  # same seed, same samples
        assert by[("female_1", 1)][0] == by[("female_1", 1)][1]
        assert by[("male_1", 1)][0] != by[("female_1", 1)][0]  # another prompt, another voice
        assert by[("male_1", 1)][0] != by[("male_1", 2)][0]  # the seed drives the sampled tokens
        spoken = [x for x in lines if "row" in x]
        assert len(spoken) == 4 and all(x["duration"] > 0 and x["speaker"] in {"male_1", "female_1"} for x in spoken)
        error = lines[-1]
        assert error["error"] == "MissingModelError" and "nobody.wav does not exist" in error["message"]
        assert "\n" not in error["message"]

    def test_a_prompt_voice_needs_its_clip_and_transcript(tmp_path):
        import numpy as np
        import soundfile

        assert prompt_files("英文男") is None  # an SFT speaker: nothing to check
        clip = tmp_path / "voice.wav"
        with pytest.raises(MissingModelError, match="voice.wav does not exist") as missing:
            prompt_files(f"prompt:{clip}", "stages.speak_instruction.voices.0.speaker")
        assert str(missing.value).startswith("stages.speak_instruction.voices.0.speaker: ")
        soundfile.write(clip, np.zeros(16000, dtype=np.float32), 16000)
        with pytest.raises(MissingModelError, match="no transcript at .*voice.txt"):
            prompt_files(f"prompt:{clip}")
        clip.with_suffix(".txt").write_text("Hello there.\n", encoding="utf-8")
        assert prompt_files(f"prompt:{clip}") == (clip, "Hello there.")
        soundfile.write(clip, np.zeros(16000 * 31, dtype=np.float32), 16000)
        with pytest.raises(MissingModelError, match="lasts 31.0 s"):
            prompt_files(f"prompt:{clip}")
        assert "\n" not in str(missing.value)
