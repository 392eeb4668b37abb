"""Score checkpoints on a build's held-out split, in the LLaMA-Omni paper's terms.

    python -m omni.evaluate data_root=DIR                                  # the run's latest checkpoint
    python -m omni.evaluate data_root=DIR eval_root=OTHER_BUILD evaluate.max_items=100
    python -m omni.evaluate data_root=DIR 'evaluate.checkpoints=[stage1-step0000100,stage2-step0000200]'
    python -m omni.evaluate data_root=DIR evaluate.judge=null              # no LLM judge

Every held-out item (the first of `evaluate.splits` with rows: data/test-*.parquet, else
data/validation-*.parquet, else, for builds too small to hold any out, data/train-*.parquet with
a note that the scores show memorization) is answered from its instruction audio by each checkpoint, as
`omni.infer` does. Per item: the text answer, its units, units per second of the spoken answer,
the latency to the first chunk of speech and the whole answer's wall time; the text answer's WER
against the dataset's answer (both normalized as below); ASR-WER of the spoken
answer (Whisper's transcript against the text answer, both through Whisper's English normalizer,
scored as the pipeline's verify stage scores it); DNSMOS when speechmos is installed; and an LLM
judge's score 1-5 of the text answer given the question's text (the pipeline's LLM engines, one
JSON-constrained integer). Items that cannot be scored are kept, with the reason.

Writes `<run folder>/eval/<name>.json` (settings, per-item results, failures) and `<name>.md`
(one column per checkpoint, a row per metric: mean and n), and prints the table; the judge
engine's own output goes to `<name>.log` beside them.
"""

from __future__ import annotations

import copy
import gc
import glob
import importlib.util
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.shards import atomic_write_bytes
from stages.verify import WordErrors, error_rate

from . import audio as audio_io
from . import checkpoint as ckpt
from .config import UserError, command_line, conf_dir, run_dir

log = logging.getLogger("omni.evaluate")
DNSMOS_COLUMNS = ("dnsmos_p808", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")


# -- what is evaluated --------------------------------------------------------------------------

@dataclass
class Item:
    """One held-out row: the question as audio bytes and as text, and the dataset's own answer."""

    id: str
    audio: dict | None
    instruction: str
    reference: str


def held_out_files(root: Path, patterns) -> tuple[str, list[str]]:
    """(split name, files) of the first glob under `root` whose files have rows."""
    import pyarrow.parquet as pq

    for pattern in patterns:
        files = [f for f in sorted(glob.glob(str(root / pattern))) if pq.ParquetFile(f).metadata.num_rows > 0]
        if files:
            return Path(files[0]).name.split("-")[0], files
    raise UserError(f"no rows in {root}: none of {', '.join(patterns)} has any (evaluate.splits)")


def read_items(files: list[str], columns, limit: int | None) -> list[Item]:
    import pyarrow.parquet as pq

    items: list[Item] = []
    for path in files:
        shard = pq.ParquetFile(path)
        names = set(shard.schema_arrow.names)
        if not {"id", "instruction_audio"} <= names:
            raise UserError(f"{path} has no id or instruction_audio column: not a split of this pipeline")
        wanted = ["id", "instruction_audio", *[c for c in (*columns, "response") if c in names]]
        for batch in shard.iter_batches(batch_size=64, columns=list(dict.fromkeys(wanted))):
            for row in batch.to_pylist():
                text = next((row[c] for c in columns if (row.get(c) or "").strip()), "")
                items.append(Item(str(row["id"]), row["instruction_audio"], text.strip(), row.get("response") or ""))
                if limit is not None and len(items) >= limit:
                    return items
    return items


def resolve_checkpoints(cfg: DictConfig) -> list[ckpt.Checkpoint]:
    """`evaluate.checkpoints` as checkpoints: folders, or names in the run's checkpoints/; [] = the latest."""
    known = ckpt.checkpoints(run_dir(cfg))
    wanted = list(cfg.evaluate.checkpoints or [])
    if not wanted:
        if not known:
            raise UserError(f"no checkpoint in {run_dir(cfg)}; train first or give evaluate.checkpoints=[FOLDER]")
        return [known[-1]]
    found = []
    for entry in map(str, wanted):
        by_name = [c for c in known if c.path.name == entry]
        path = Path(entry).expanduser()
        if by_name:
            found.append(by_name[0])
        elif (path / "meta.json").is_file():
            meta = ckpt.Checkpoint(path, 0, 0).meta
            found.append(ckpt.Checkpoint(path.resolve(), int(meta["stage"]), int(meta["step"])))
        else:
            names = ", ".join(c.path.name for c in known) or "none"
            raise UserError(f"unknown checkpoint {entry}: not a checkpoint folder, nor one of the run's ({names})")
    return found


def label(checkpoint: ckpt.Checkpoint) -> str:
    """Column name: run folder / checkpoint folder."""
    return f"{checkpoint.path.parent.parent.name}/{checkpoint.path.name}"


# -- scorers ------------------------------------------------------------------------------------

def local_model(model: str, key: str) -> None:
    """A model the user must have locally: one line naming `key` when it is not there."""
    from pipeline.errors import MissingModelError
    from stages.model_paths import require_local

    try:
        require_local(model, key)
    except MissingModelError as err:
        raise UserError(str(err)) from None


class SpeechScorer:
    """ASR-WER and DNSMOS of one spoken answer, the models loaded once."""

    def __init__(self, ecfg: DictConfig):
        from stages.engines.whisper_asr import WhisperASR

        a = ecfg.asr
        local_model(str(a.model), "evaluate.asr.model")
        self.asr = WhisperASR(str(a.model), device=str(a.device), compute_type=str(a.compute_type),
                              threads=int(a.threads), beam_size=int(a.beam_size))
        self.wer = WordErrors()
        self.dnsmos = None
        if ecfg.dnsmos and importlib.util.find_spec("speechmos") is not None:
            from stages.engines.dnsmos import DNSMOS

            self.dnsmos = DNSMOS(threads=int(a.threads), hop_s=float(ecfg.dnsmos_hop_s))
        elif ecfg.dnsmos:
            log.warning("DNSMOS skipped: the speechmos package is not installed")

    def engines(self) -> dict[str, str]:
        return {"asr": self.asr.version(), "dnsmos": self.dnsmos.version() if self.dnsmos else "off"}

    def score(self, text: str, speech: np.ndarray) -> dict:
        transcript = self.asr.transcribe(speech)
        errors, words = self.wer.word_errors(text, transcript)
        out = {"transcript": transcript, "wer": error_rate(errors, words), "word_errors": errors,
               "reference_words": words}
        if self.dnsmos is not None:
            out.update({k: float(v) for k, v in self.dnsmos.score(speech).items()})
        return out


def fail(record: dict, reason: str, detail: str = "") -> None:
    record["failures"].append({"reason": reason, "detail": detail})


def answer_items(responder, items: list[Item], scorer: SpeechScorer | None, speak: bool, tag: str) -> list[dict]:
    """One record per item: the answer, its timings and speech scores, and why any part is missing."""
    records, wer = [], WordErrors()
    for n, item in enumerate(items, 1):
        record = {"id": item.id, "instruction": item.instruction, "reference": item.reference, "failures": []}
        records.append(record)
        try:
            samples = audio_io.decode_bytes((item.audio or {})["bytes"])
        except (RuntimeError, TypeError, KeyError) as err:  # soundfile's errors are RuntimeErrors
            fail(record, "bad_audio", f"instruction audio does not decode: {err!r}")
            continue
        answer = responder.answer(samples)
        speech_s = len(answer.audio) / audio_io.SAMPLE_RATE
        record.update(text=answer.text, units=answer.units, seconds=answer.seconds, first_audio_s=answer.first_audio_s,
                      speech_seconds=speech_s, units_per_second=len(answer.units) / speech_s if speech_s else None)
        if item.reference.strip():  # how closely the answer reproduces the dataset's own
            errors, words = wer.word_errors(item.reference, answer.text)
            record.update(reference_wer=error_rate(errors, words), reference_word_errors=errors,
                          reference_words_dataset=words)
        if not answer.text.strip():
            fail(record, "empty_text", "the model ended its answer at once")
        if not answer.units:
            fail(record, "no_units", "the speech decoder gave no units")
        if speak and answer.units and not speech_s:
            fail(record, "no_audio", "no vocoder, or the vocoder gave no samples")
        if scorer is not None and speech_s and answer.text.strip():
            record.update(scorer.score(answer.text, answer.audio))
        if n % 10 == 0 or n == len(items):
            log.info("%s: %d/%d answered", tag, n, len(items))
    return records


# -- the judge ----------------------------------------------------------------------------------

@dataclass
class JudgePrompt:
    system: str
    user: str
    answer_key: str


def judge_prompt(name: str) -> JudgePrompt:
    import yaml

    path = conf_dir() / "prompts" / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"evaluate.judge.prompt={name}: no prompt file {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        return JudgePrompt(data["system"], data["user"], data["answer_key"])
    except (KeyError, TypeError):
        raise UserError(f"{path} needs system, user and answer_key") from None


def engine_settings(jcfg: DictConfig):
    from stages.llm.settings import EngineSettings

    try:
        return EngineSettings(**OmegaConf.to_container(jcfg.engine, resolve=True))
    except TypeError as err:
        raise UserError(f"evaluate.judge.engine: {err}") from None


@dataclass
class Judge:
    """The pipeline's LLM engine asked for one score per (question, answer), greedy and
    schema-constrained; what it returns without a score is recorded with the raw text."""

    settings: DictConfig
    model_cache: str
    prompt: JudgePrompt = field(init=False)

    def __post_init__(self):
        self.prompt = judge_prompt(str(self.settings.prompt))
        self.engine_settings = engine_settings(self.settings)
        if self.engine_settings.name == "vllm_offline" or self.engine_settings.launch:
            local_model(str(self.settings.model), "evaluate.judge.model")

    def score(self, records: list[dict], log_path: Path) -> dict[str, str]:
        """Fill `judge` (1-5) into the records that have a question and an answer; returns the engine's
        identity. The engine's own output (vLLM and its worker processes) goes to `log_path`."""
        from pipeline.console import console
        from stages.llm.engine_pool import close_all, get_engine
        from stages.llm.judge import judge_messages, judge_schema, parse_score, prompt_hash
        from stages.llm.requests import ChatRequest, Sampling

        s, p = self.settings, self.prompt
        todo = []
        for record in records:
            record["judge"] = None
            if not (record.get("text") or "").strip():
                continue  # no answer: already a failure of its own
            if not record["instruction"]:
                fail(record, "judge_no_question", "no instruction text in the held-out row (evaluate.instruction_columns)")
                continue
            todo.append(record)
        quiet = not console.redirected
        if quiet:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            console.send_engine_output_to(log_path)
        try:
            engine, weights = get_engine(str(s.model), str(s.dtype), s.max_model_len, self.engine_settings,
                                         os.path.expanduser(str(self.model_cache)))
            identity = {**weights, **engine.identity(), "prompt_hash": prompt_hash(p.system, p.user, p.answer_key)}
            requests = [ChatRequest(judge_messages(p.system, p.user, r["instruction"], r["text"]),
                                    Sampling(0.0, 1.0, int(s.max_tokens)), seed=0,
                                    json_schema=judge_schema(p.answer_key)) for r in todo]
            todo, requests = self._fitting(engine, todo, requests)
            generations = engine.generate(requests, lambda i, g: None) if requests else []
        finally:
            close_all()
            if quiet:
                console.restore()
        for record, g in zip(todo, generations):
            if g.error is not None:
                fail(record, "judge_error", f"{g.error}: {g.error_detail}")
                continue
            record["judge"] = parse_score(g.text, p.answer_key) if g.finish_reason != "length" else None
            if record["judge"] is None:
                fail(record, "judge_unparsable", f"no score 1-5 under {p.answer_key!r} "
                     f"(finish_reason={g.finish_reason}) | raw: {g.text!r}")
        return identity

    def _fitting(self, engine, records, requests):
        """The requests whose prompt leaves room for the answer; the rest are recorded, never truncated."""
        limit = engine.context_limit()
        if limit is None:
            return records, requests
        keep_r, keep_q = [], []
        for record, request, count in zip(records, requests, engine.prompt_tokens(requests)):
            if count is not None and count + int(self.settings.max_tokens) > limit:
                fail(record, "judge_over_context", f"prompt is {count} tokens; the judge's context is {limit}")
            else:
                keep_r.append(record)
                keep_q.append(request)
        return keep_r, keep_q


# -- the report ---------------------------------------------------------------------------------

# (key in the summary, table row, scale for display, digits)
ROWS = (
    ("judge", "judge score (1-5)", 1.0, 2),
    ("reference_wer", "text WER % against the dataset's answer (corpus)", 100.0, 1),
    ("asr_wer", "ASR-WER % (corpus)", 100.0, 1),
    ("asr_wer_item", "ASR-WER % (mean per item)", 100.0, 1),
    *[(c, f"DNSMOS {c.removeprefix('dnsmos_').upper()}", 1.0, 2) for c in DNSMOS_COLUMNS],
    ("units", "units per answer", 1.0, 1),
    ("units_per_second", "units per second of speech", 1.0, 1),
    ("first_audio_ms", "latency to first speech (ms)", 1.0, 0),
    ("seconds", "answer wall time (s)", 1.0, 2),
    ("speech_seconds", "speech length (s)", 1.0, 2),
)


def stat(values) -> dict:
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return {"mean": sum(values) / len(values) if values else None, "n": len(values)}


def summarize(records: list[dict]) -> dict:
    scored = [r for r in records if "wer" in r]
    words = sum(r["reference_words"] for r in scored)
    against = [r for r in records if "reference_wer" in r]
    dataset_words = sum(r["reference_words_dataset"] for r in against)
    return {
        "judge": stat(r.get("judge") for r in records),
        "reference_wer": {"mean": sum(r["reference_word_errors"] for r in against) / dataset_words
                          if dataset_words else None, "n": len(against)},
        "asr_wer": {"mean": sum(r["word_errors"] for r in scored) / words if words else None, "n": len(scored)},
        "asr_wer_item": stat(r["wer"] for r in scored),
        **{c: stat(r.get(c) for r in records) for c in DNSMOS_COLUMNS},
        "units": stat(len(r["units"]) if "units" in r else None for r in records),
        "units_per_second": stat(r.get("units_per_second") for r in records),
        "first_audio_ms": stat(None if r.get("first_audio_s") is None else 1000 * r["first_audio_s"] for r in records),
        "seconds": stat(r.get("seconds") for r in records),
        "speech_seconds": stat(r.get("speech_seconds") or None for r in records),
    }


def failures(records: list[dict]) -> dict:
    listed = [{"id": r["id"], **f} for r in records for f in r["failures"]]
    counts: dict[str, int] = {}
    for f in listed:
        counts[f["reason"]] = counts.get(f["reason"], 0) + 1
    return {"items": len({f["id"] for f in listed}), "counts": dict(sorted(counts.items())), "listed": listed}


def cell(entry: dict, scale: float, digits: int) -> str:
    if entry["mean"] is None:
        return f"- (n={entry['n']})"
    return f"{entry['mean'] * scale:.{digits}f} (n={entry['n']})"


def failure_cell(found: dict) -> str:
    why = ", ".join(f"{reason}={count}" for reason, count in found["counts"].items())
    return f"{found['items']} ({why})" if why else "0"


def markdown(report: dict) -> str:
    columns = report["checkpoints"]
    lines = ["| metric | " + " | ".join(c["label"] for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    total = report["items"]
    lines.append("| items without failures | " + " | ".join(
        f"{sum(1 for r in c['items'] if not r['failures'])}/{total}" for c in columns) + " |")
    for key, name, scale, digits in ROWS:
        if any(c["summary"][key]["n"] for c in columns):
            lines.append(f"| {name} | " + " | ".join(cell(c["summary"][key], scale, digits) for c in columns) + " |")
    lines.append("| items with failures | " + " | ".join(failure_cell(c["failures"]) for c in columns) + " |")
    if report["split"] == "train":
        lines.append("\nThese are training items (the build has no held-out split): the scores show what the "
                     "model memorized, not how it generalizes.")
    noise = [c["label"] for c in columns if c["vocoder"] == "random weights"]
    if noise:
        lines.append(f"\nSpeech of {', '.join(noise)} comes from a random-weight vocoder: its ASR-WER and DNSMOS "
                     "score noise.")
    return "\n".join(lines) + "\n"


def write_report(folder: Path, name: str, report: dict) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    for path, text in ((json_path, json.dumps(report, indent=1, default=float) + "\n"),
                       (md_path, f"# {name}\n\n{report['split']} split of {report['eval_root']}: "
                                 f"{report['items']} items\n\n{table}")):
        atomic_write_bytes(path, text.encode("utf-8"))
    return json_path, md_path


# -- the command --------------------------------------------------------------------------------

def evaluate(cfg: DictConfig) -> dict:
    """Answer and score the held-out items with each checkpoint; write and return the report."""
    from .infer import Responder, device_of

    e = cfg.evaluate
    key = "eval_root" if cfg.eval_root else "data_root"
    root = Path(str(cfg[key])).expanduser()
    if not root.is_dir():
        raise UserError(f"{key} {root} is not a folder")
    if e.max_items is not None and int(e.max_items) < 1:
        raise UserError(f"evaluate.max_items must be at least 1 (or null = all), got {e.max_items}")
    split, files = held_out_files(root, list(e.splits))
    checkpoints = resolve_checkpoints(cfg)
    judge = Judge(e.judge, str(cfg.model_cache)) if e.judge else None  # prompt and model checked before any work
    scorer = SpeechScorer(e) if e.speak else None
    items = read_items(files, list(e.instruction_columns), e.max_items)
    log.info("%d %s items from %s; checkpoints: %s", len(items), split, root, ", ".join(map(label, checkpoints)))

    device = device_of(cfg)
    columns = []
    for checkpoint in checkpoints:
        one = copy.deepcopy(cfg)
        one.infer.checkpoint = str(checkpoint.path)
        responder = Responder(one, device, speak=bool(e.speak))
        records = answer_items(responder, items, scorer, bool(e.speak), label(checkpoint))
        columns.append({"label": label(checkpoint), "path": str(checkpoint.path), "stage": checkpoint.stage,
                        "step": checkpoint.step, "vocoder": vocoder_kind(responder), "items": records})
        del responder
        gc.collect()
    engines = scorer.engines() if scorer else {}
    del scorer
    name = str(e.name) if e.name else f"{split}-" + "-vs-".join(c.path.name for c in checkpoints)
    out = Path(str(e.output_dir)).expanduser() if e.output_dir else run_dir(cfg)
    if judge is not None:
        _free_accelerator()
        engines["judge"] = judge.score([r for c in columns for r in c["items"]], out / "eval" / f"{name}.log")
    for column in columns:
        column["summary"] = summarize(column["items"])
        column["failures"] = failures(column["items"])
    report = {"name": name, "eval_root": str(root), "split": split, "files": files, "items": len(items),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": device, "engines": engines,
              "settings": OmegaConf.to_container(e, resolve=True), "checkpoints": columns}
    report["written"] = [str(p) for p in write_report(out / "eval", name, report)]
    return report


def vocoder_kind(responder) -> str | None:
    """None (no speech), "random weights" (its speech is noise) or "trained"."""
    if responder.vocoder is None:
        return None
    return "random weights" if getattr(responder.vocoder, "random_weights", False) else "trained"


def _free_accelerator() -> None:
    """The answering model is gone: give its GPU memory back before the judge's engine takes its share."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _run(cfg: DictConfig) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    report = evaluate(cfg)
    print(markdown(report), end="")
    for path in report["written"]:
        print("wrote", path)


def main(argv: list[str] | None = None) -> None:
    command_line(_run, __doc__, argv)


if __name__ == "__main__":
    main()
