"""The package tests' small build: synthetic upstream shards (real Piper speech), then the real
units and package stages through the runner, with llama_omni export on. A module of its own
(not conftest) so test files can import it whatever other test folders are collected with them."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "units"))

from synthetic_upstream import meta, run_config, speak_row, speech, write_stage  # noqa: E402

from pipeline.runner import Runner  # noqa: E402

INSTRUCTIONS = {"p1": "Where is Paris?", "p2": "Say yes.", "r22": "How long do I boil an egg?", "p3": "Is it dark?"}
RESPONSES = {"p1": "Paris is in France.", "p2": "Yes.", "r22": "Boil it for six minutes.", "p3": "Yes."}
SHARDS = [["p1", "p2", "bad_inst", "long_inst", "unverified", "ghost", "r22"], ["p3", "refused", "empty_inst"]]
TRAINED = ["p1", "p2", "r22", "p3"]
UNITS = {"max_seconds": 30.0, "kmeans": {"k": 6, "sample_items": 20}}
PACKAGE = {"export": {"formats": ["llama_omni"]}}
RATE_22K = 22050


def instruction_text(i):
    return INSTRUCTIONS.get(i, "Tell me a joke.")


def response_text(i):
    return RESPONSES.get(i, "No.")


def instruction_clip(i):
    clip = speech(instruction_text(i))
    return np.tile(clip, 40) if i == "long_inst" else clip  # about 40 s: over the 30 s the model hears


def response_row(i):
    if i == "r22":  # a response kept at the TTS's native rate: package must store 16 kHz
        from stages import audio

        return speak_row(i, audio.resample(speech(response_text(i)), 16000, RATE_22K), rate=RATE_22K)
    return speak_row(i, speech(response_text(i)))


def write_upstream(root):
    ingest = [[{"id": i, "source": "sample", "instruction": instruction_text(i) + " (original)", "context": "",
                "prompt": instruction_text(i), "reference_response": ""} for i in shard] for shard in SHARDS]
    write_stage(root, "ingest", "ingest", ingest,
                errors=[[{"id": "blank", "reason": "empty_instruction"}], []])
    rewrite = [[{"id": i, "instruction_spoken": instruction_text(i), "rewrite_raw": "{}",
                 "rewrite_meta": meta("HuggingFaceTB/SmolLM2-135M-Instruct", "abc123", "q4_1")}
                for i in shard if i not in ("ghost", "refused")] for shard in SHARDS]
    write_stage(root, "rewrite", "rewrite", rewrite, errors=[[], [{"id": "refused", "reason": "looks_like_refusal"}]])
    live = [[i for i in shard if i not in ("ghost", "refused")] for shard in SHARDS]
    respond = [[{"id": i, "response": response_text(i), "respond_raw": "{}",
                 "respond_meta": meta("HuggingFaceTB/SmolLM2-135M-Instruct", "def456")} for i in shard] for shard in live]
    write_stage(root, "respond", "respond", respond)
    versions = {"piper:joe": "piper-tts 1.8.0, en_US-joe-medium.onnx"}
    inst = [[speak_row(i, instruction_clip(i)) for i in shard] for shard in live]
    for shard in inst:
        for row in shard:
            if row["id"] == "bad_inst":
                row["audio"] = {"bytes": b"RIFF....garbage", "path": "bad.wav"}
            if row["id"] == "empty_inst":
                row["audio"] = {"bytes": b"", "path": "empty.flac"}
    write_stage(root, "speak_instruction", "speak", inst, engine_versions=versions)
    write_stage(root, "speak_response", "speak", [[response_row(i) for i in shard] for shard in live],
                engine_versions=versions)

    def verified(shard, side):
        return [{"id": i, "transcript": "", "wer": 0.05 if side == "response" else 0.1, "duration": 1.0,
                 "chars_per_second": 12.0} for i in shard if not (side == "response" and i == "unverified")]

    asr = {"asr": "faster-whisper 1.2.1, tiny.en"}
    write_stage(root, "verify_instruction", "verify", [verified(s, "instruction") for s in live], engine_versions=asr)
    write_stage(root, "verify_response", "verify", [verified(s, "response") for s in live], engine_versions=asr,
                errors=[[{"id": "unverified", "reason": "wer_too_high", "detail": "wer=0.800"}], []])


def build(root):
    return Runner(run_config(root, units=UNITS, package=PACKAGE, only=["units", "package"])).build()
