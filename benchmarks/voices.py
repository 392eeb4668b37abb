"""The offline instruction voices side by side: ASR round trip (WER) and DNSMOS, on the same texts.

Candidates: Piper joe, flite slt and kal16 (the speak stage's engines) and two Festival voices,
kal_diphone and cmu_us_slt_arctic_hts (Debian's festvox-kallpc16k and festvox-us-slt-hts; apt only,
spoken through `text2wave`). Each voice speaks every text; each clip takes the speak stage's
post-processing and the verify stage's own scoring (Whisper, WER after its normalizer, DNSMOS), both
as the local profile configures them, on one thread. A voice that is not installed is reported absent.

Texts: the spoken instructions of a finished build (`rewrite` shards under data_root) and the bundled
sample's instructions as the ingest stage keeps them, in spoken form (the rewrite stage's normalizer):
the first 60 of them.

    python -m benchmarks.voices [data_root=PATH] [any Hydra override of the local profile]
"""
from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass, field, replace

import numpy as np

from benchmarks.tts import JOE
from pipeline.cli import load_config
from pipeline.config import RunConfig
from pipeline.shards import Layout, read_table
from stages import audio
from stages.ingest import IngestStage
from stages.speak import SpeakSettings, load_engine
from stages.text.normalizers import get_normalizer
from stages.verify import DNSMOS_COLUMNS, VerifySettings, VerifyStage

CANDIDATES = {
    "piper joe": JOE,
    "flite slt": {"engine": "flite", "speaker": "slt"},
    "flite kal16": {"engine": "flite", "speaker": "kal16"},
    "festival kal_diphone": {"engine": "festival", "speaker": "kal_diphone"},
    "festival us-slt-hts": {"engine": "festival", "speaker": "cmu_us_slt_arctic_hts"},
}
TEXTS = 60  # ~2 CPU s per clip to score (Whisper pads every clip to 30 s): 60 x 5 voices took ~12 min on 2 shared cores
WORST_SHOWN = 3  # highest-WER clips printed per voice, with what Whisper heard


@dataclass
class VoiceResult:
    name: str
    absent: str | None = None  # why the voice could not be loaded
    failed: list[str] = field(default_factory=list)  # synthesis errors, one per text
    rows: list[dict] = field(default_factory=list)  # the verify stage's row per clip, plus text and cpu_s


def open_engine(voice: dict):
    """The voice's engine, loaded and checked; raises if it is not installed."""
    engine = load_engine(voice, threads=1)
    engine.check_speaker(voice.get("speaker"))
    return engine


def spoken_build_instructions(run: RunConfig) -> list[str]:
    """instruction_spoken of every rewrite shard a finished build left under data_root."""
    folder = Layout(run.context["data_root"]).shard("rewrite", 0).parent
    texts = []
    for path in sorted(folder.glob("shard-*.parquet")):
        texts += read_table(path, ["instruction_spoken"]).column("instruction_spoken").to_pylist()
    return [t for t in texts if t and t.strip()]


def spoken_sample_instructions(run: RunConfig) -> list[str]:
    """The configured source's prompts that the ingest stage keeps, in the rewrite stage's spoken form."""
    nodes = {node.name: node.settings for node in run.stages}
    ingest = IngestStage("ingest", nodes["ingest"], run.context)
    kept = [item for item in ingest.process(list(ingest.read())) if isinstance(item, dict)]
    normalize = get_normalizer(nodes["rewrite"].normalizer, run.context["model_cache"])
    return [normalize(item["prompt"]) for item in kept]


def instruction_texts(run: RunConfig) -> list[str]:
    texts = spoken_build_instructions(run) + spoken_sample_instructions(run)
    return list(dict.fromkeys(t.strip() for t in texts))[:TEXTS]


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (flite and text2wave run as children)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def speak(engine, voice: dict, text: str, speak_settings: SpeakSettings) -> tuple[bytes, float]:
    """(FLAC as the speak stage stores it, CPU seconds of the synthesis alone)."""
    started = cpu_seconds()
    raw, rate = engine.synthesize(text, voice.get("speaker"), 0)
    spent = cpu_seconds() - started
    s = speak_settings
    clip, rate = audio.postprocess(raw, rate, target_rate=s.sample_rate, target_lufs=s.loudness_lufs,
                                   peak_dbfs=s.peak_dbfs, trim_db=s.trim_db, trim_pad_s=s.trim_pad_s)
    return audio.encode_flac(clip, rate), spent


def scoring_stage(settings: VerifySettings) -> VerifyStage:
    """The verify stage with DNSMOS, one thread, no cache and no bounds: every clip comes back scored."""
    unbounded = replace(settings, scores=["dnsmos"], threads=1, score_cache_dir=None, max_wer=None,
                        min_duration_s=None, max_duration_s=None, min_chars_per_second=None,
                        max_chars_per_second=None, **{f"min_{c}": None for c in DNSMOS_COLUMNS})
    stage = VerifyStage("verify_instruction", unbounded, {"seed": 0})
    stage.setup()
    return stage


def measure_voice(name: str, voice: dict, texts: list[str], speak_settings: SpeakSettings,
                  scorer: VerifyStage) -> VoiceResult:
    result = VoiceResult(name)
    try:
        engine = open_engine(voice)
    except Exception as exc:  # not installed: reported, not fatal
        result.absent = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        return result
    for i, text in enumerate(texts):
        try:
            flac, spent = speak(engine, voice, text, speak_settings)
        except Exception as exc:
            result.failed.append(f"{text[:60]!r}: {type(exc).__name__}: {exc}")
            continue
        row = {"id": f"{i}", "audio": audio.audio_struct(flac, f"{i}.flac"), scorer.settings.text_column: text}
        result.rows.append({**scorer.verify_one(row), "text": text, "cpu_s": spent})
    return result


def p10(values: list[float]) -> float:
    return float(np.percentile(values, 10))


def summary(result: VoiceResult, max_wer: float | None) -> dict[str, str]:
    """One table row: the voice's means, shares and percentiles."""
    if result.absent:
        return {"voice": result.name, "clips": "absent"}
    rows = result.rows
    if not rows:
        return {"voice": result.name, "clips": f"0 ({len(result.failed)} failed)"}
    wer = [r["wer"] for r in rows]
    ovrl, p808 = [r["dnsmos_ovrl"] for r in rows], [r["dnsmos_p808"] for r in rows]
    audio_s = sum(r["duration"] for r in rows)
    clips = f"{len(rows)}" + (f" ({len(result.failed)} failed)" if result.failed else "")
    return {
        "voice": result.name, "mean WER": f"{np.mean(wer):.3f}",
        f"WER > {max_wer}": "-" if max_wer is None else f"{np.mean(np.array(wer) > max_wer):.1%}",
        "OVRL mean": f"{np.mean(ovrl):.2f}", "OVRL p10": f"{p10(ovrl):.2f}",
        "P808 mean": f"{np.mean(p808):.2f}", "P808 p10": f"{p10(p808):.2f}",
        "SIG mean": f"{np.mean([r['dnsmos_sig'] for r in rows]):.2f}",
        "BAK mean": f"{np.mean([r['dnsmos_bak'] for r in rows]):.2f}",
        "RTF (1 core)": f"{sum(r['cpu_s'] for r in rows) / audio_s:.3f}",
        "mean clip s": f"{audio_s / len(rows):.2f}", "clips": clips,
    }


def markdown_table(rows: list[dict[str, str]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row.get(c, "") for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def worst_clips(result: VoiceResult) -> list[str]:
    worst = sorted(result.rows, key=lambda r: r["wer"], reverse=True)[:WORST_SHOWN]
    return [f"  WER {r['wer']:.2f}: said {r['text'][:90]!r}\n            heard {r['transcript'][:90]!r}"
            for r in worst if r["wer"] > 0]


def main(overrides: list[str]) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run = load_config(overrides)
    nodes = {node.name: node.settings for node in run.stages}
    speak_settings, verify_settings = nodes["speak_instruction"], nodes["verify_instruction"]
    texts = instruction_texts(run)
    print(f"{len(texts)} instruction texts (build under {run.context['data_root']} + bundled sample)"
          + (f"; fewer than {TEXTS}: pass data_root= of a finished build" if len(texts) < TEXTS else ""))
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; RTF is CPU seconds of "
          "synthesis (child processes included) per second of stored audio, one thread")
    scorer = scoring_stage(verify_settings)
    results = []
    for name, voice in CANDIDATES.items():
        started = time.perf_counter()
        results.append(measure_voice(name, voice, texts, speak_settings, scorer))
        print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print(f"\nWhisper {verify_settings.asr_model} ({verify_settings.asr_compute_type}, beam {verify_settings.beam_size}); "
          f"WER after the verify stage's normalizer; max_wer {verify_settings.max_wer}; "
          f"DNSMOS hop {verify_settings.dnsmos_hop_s} s\n")
    print(markdown_table([summary(r, verify_settings.max_wer) for r in results]))
    for result in results:
        shown = worst_clips(result) + [f"  failed: {f}" for f in result.failed] + (
            [f"  absent: {result.absent}"] if result.absent else [])
        if shown:
            print(f"\n{result.name}:\n" + "\n".join(shown))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
