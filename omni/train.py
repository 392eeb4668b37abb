"""Training recipe for LLaMA-Omni on the dataset's train split (torchtune style); evaluation
reads its validation split (or, in builds without one, items of train held out by id hash).

    python -m omni.train data_root=DIR                        # local profile, stage 1 then 2
    python -m omni.train data_root=DIR stage=2                # only the speech decoder
    torchrun --nproc_per_node=4 -m omni.train data_root=DIR train=full

Stage 1 (speech -> text): encoder frozen; adaptor + LLM trained with cross-entropy on the
response and its end-of-turn token. Stage 2 (speech -> units): everything frozen but the speech
decoder, trained with CTC. Each stage: AdamW, linear warm-up then cosine decay, `epochs` passes.

Everything lives in `${data_root}/runs/<run_name>/`: config.yaml, train.log, metrics.csv
(loss, tokens/s, learning rate), checkpoints/stage{S}-step{N}/. Rerunning the same command
resumes from the latest checkpoint: weights, optimizer, scheduler, step, RNG and the position in
the data, so the next step's loss equals that of a run that was never interrupted. A stage whose
final checkpoint exists is skipped; stage 2 starts from stage 1's final weights.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from pipeline.shards import atomic_write_bytes

from . import checkpoint as ckpt
from . import distributed
from .build import build_model, load_tokenizer
from .config import UserError, command_line, run_dir, to_yaml
from .data import MicroBatches, census, data_splits
from .flops import FlopCounter
from .metrics import MetricsLog
from .prompt import PromptBuilder

log = logging.getLogger("omni.train")


def warmup_cosine(warmup: int, total: int):
    """LR multiplier: linear warm-up over `warmup` steps, then cosine decay to zero at `total`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


class Recipe:
    """setup(stage) -> train() -> save_checkpoint(); resume() is part of setup."""

    def __init__(self, cfg: DictConfig):
        self.cfg, self.t = cfg, cfg.train
        self.stages = {"1": [1], "2": [2], "both": [1, 2]}.get(str(cfg.stage))
        if self.stages is None:
            raise UserError(f"stage={cfg.stage}: use 1, 2 or both")
        self.dist = distributed.init(cfg.device)
        self.run_dir = run_dir(cfg)
        self.splits = data_splits(cfg.data_root, cfg.data)
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.run_dir / "config.yaml", to_yaml(cfg).encode())
            _log_to_file(self.run_dir / "train.log")
        else:
            logging.getLogger("omni").setLevel(logging.WARNING)  # one voice on the console
        self.tokenizer = load_tokenizer(self.t.tokenizer)
        self.metrics = MetricsLog(self.run_dir, cfg.log.tensorboard, enabled=self.dist.main)
        self.census = None
        self.steps_this_call = 0

    # ------------------------------------------------------------------ setup / resume
    def setup(self, stage: int) -> bool:
        """Model, optimizer, schedule and data position of `stage`; False if it is already done."""
        cfg, t = self.cfg, self.t
        self.stage = stage
        last = ckpt.latest(self.run_dir)
        if last is not None and not cfg.resume:
            raise UserError(f"{self.run_dir} already has checkpoints; set resume=true or another run_name")
        if last is not None and (last.stage > stage or (last.stage == stage and last.meta["done"])):
            log.info("stage %d is already done (%s)", stage, last.path.name)
            return False
        if last is not None and last.stage < stage and not last.meta["done"]:
            log.warning("stage %d starts from an unfinished stage %d (%s)", stage, last.stage, last.path.name)
        if stage == 2 and last is None:
            log.warning("stage 2 without a stage-1 checkpoint: the decoder reads the untrained base LLM")

        self.model = build_model(t, self.tokenizer, seed=cfg.seed, pretrained=last is None)
        if last is not None:
            ckpt.load_matching(self.model, last.path)
        self.model.set_stage(stage)
        self.bf16 = t.precision == "bf16"
        if stage == 2 and self.bf16:  # frozen in stage 2: store them in bf16 to save memory
            self.model.llm.to(torch.bfloat16)
            self.model.adaptor.to(torch.bfloat16)
        if stage == 1 and t.gradient_checkpointing:
            self.model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.model.to(self.dist.device)
        if t.compile:  # per layer: small graphs compile once and are reused by every layer of a kind
            for layer in (*self.model.llm.get_decoder().layers, *self.model.decoder.layers):
                layer.compile()
        self.builder = PromptBuilder(self.tokenizer, cfg.data.system_prompt, cfg.data.instruction,
                                     self.model.speech_slots, cfg.data.speech_placeholder,
                                     t.tokenizer.end_of_turn)
        self._setup_schedule(stage)
        self.wrapped = distributed.wrap(self.model, self.dist, stage, bool(t.fsdp), self.bf16)
        self.flops = FlopCounter(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        hp = t[f"stage{stage}"]
        self.optimizer = torch.optim.AdamW(params, lr=hp.lr, betas=tuple(t.betas), weight_decay=hp.weight_decay,
                                           fused=bool(t.fused_adamw) or None)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(self.warmup, self.total_steps))
        self.step = 0
        torch.manual_seed(cfg.seed + stage)
        if last is not None and last.stage == stage:
            self.resume(last)
        log.info("stage %d: %d trainable parameters, %d steps (%d per epoch, accumulation %d), from step %d",
                 stage, sum(p.numel() for p in params), self.total_steps, self.steps_per_epoch,
                 self.accum, self.step)
        return True

    def _setup_schedule(self, stage: int) -> None:
        cfg, t = self.cfg, self.t
        if self.census is None:
            self.census = census(self.splits, self.builder, cfg.data)
            log.info("evaluation items: %s", self.splits.source)
        c = self.census[stage]
        log.info(c.message())
        per_step = int(t.micro_batch_size) * self.dist.world
        if int(t.batch_size) % per_step:
            raise UserError(f"batch_size {t.batch_size} is not a multiple of micro_batch_size x world = {per_step}")
        self.accum = int(t.batch_size) // per_step
        self.steps_per_epoch = c.train // int(t.batch_size)
        if self.steps_per_epoch == 0:
            raise UserError(f"stage {stage} has {c.train} training items, fewer than one batch of {t.batch_size}")
        epochs = t[f"stage{stage}"].epochs
        total = int(t.epochs if epochs is None else epochs) * self.steps_per_epoch
        self.total_steps = min(total, int(cfg.max_steps)) if cfg.max_steps else total
        self.warmup = math.ceil(float(t.warmup_ratio) * self.total_steps)

    def resume(self, last: ckpt.Checkpoint) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        state = last.state
        if state["steps_per_epoch"] != self.steps_per_epoch:
            log.warning("the number of usable items changed since %s; the data position is approximate",
                        last.path.name)
        if state["total_steps"] != self.total_steps:
            log.warning("%s was on a schedule of %d steps, this run's has %d (epochs or max_steps changed): "
                        "the learning-rate curve changes from here", last.path.name, state["total_steps"],
                        self.total_steps)
        set_optimizer_state_dict(self.model, self.optimizer, optim_state_dict=state["optimizer"],
                                 options=StateDictOptions(full_state_dict=True))
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        self.step = int(state["step"])
        log.info("resumed stage %d at step %d from %s", self.stage, self.step, last.path)

    # ------------------------------------------------------------------ data
    def _loader(self, split: str, epoch: int = 0, skip_items: int = 0, max_items=None):
        t, d = self.t, self.cfg.data
        eval_ = split == "eval"
        ds = MicroBatches(self.splits.files(split), self.builder, d, stage=self.stage, split=split,
                          micro_batch_size=int(t.micro_batch_size), seed=int(self.cfg.seed), epoch=epoch,
                          rank=0 if eval_ else self.dist.rank, world=1 if eval_ else self.dist.world,
                          skip_items=skip_items, max_items=max_items,
                          n_mels=self.model.encoder.config.num_mel_bins,
                          eval_fraction=self.splits.eval_fraction(split))
        if int(d.num_workers) <= 0:
            return iter(ds)
        return iter(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=int(d.num_workers)))

    def micro_batches(self):
        """Endless micro-batches from the current step's data position, epoch after epoch."""
        step = self.step
        self.dropped: dict = {}
        while True:
            epoch, offset = divmod(step, self.steps_per_epoch)
            it = self._loader("train", epoch, skip_items=offset * int(self.t.batch_size))
            for _ in range((self.steps_per_epoch - offset) * self.accum):
                batch = next(it, None)
                if batch is None:
                    raise RuntimeError("the shards yielded fewer items than the census counted; did they change?")
                for k, v in batch.pop("dropped").items():
                    self.dropped[k] = self.dropped.get(k, 0) + v
                yield batch
            step = (epoch + 1) * self.steps_per_epoch

    def _end_of_epoch(self) -> None:
        dropped = distributed.sum_counts(self.dropped, self.dist)
        msg = ", ".join(f"{k}={v}" for k, v in sorted(dropped.items())) or "none"
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(self.census[self.stage].skipped.items())) or "none"
        log.info("stage %d epoch %d done; skipped before training: %s; dropped while loading: %s",
                 self.stage, self.step // self.steps_per_epoch - 1, skipped, msg)
        self.dropped = {}

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.dist.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _grad_sync(self, last: bool):
        """Reduce gradients across ranks only on the last micro-batch of a step."""
        if hasattr(self.wrapped, "set_requires_gradient_sync"):  # FSDP2
            self.wrapped.set_requires_gradient_sync(last)
            return contextlib.nullcontext()
        if last or not hasattr(self.wrapped, "no_sync"):
            return contextlib.nullcontext()
        return self.wrapped.no_sync()  # DDP

    def _autocast(self):
        return torch.autocast(self.dist.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    # ------------------------------------------------------------------ train
    def train(self) -> None:
        cfg = self.cfg
        batches = self.micro_batches()
        interrupt = cfg.get("interrupt_after_steps")
        params = [p for p in self.model.parameters() if p.requires_grad]
        last_good = None
        while self.step < self.total_steps:
            self.wrapped.train()
            start, loss_sum, tokens, items, flops = time.perf_counter(), 0.0, 0, 0, 0.0
            for i in range(self.accum):
                batch, weight = next(batches), 1.0
                if not batch["ids"]:
                    if not self.dist.enabled:
                        log.warning("a micro-batch lost all its items while loading; skipped")
                        continue
                    # Every rank must run forward and backward: DDP and FSDP exchange gradients
                    # inside backward, and a rank that skipped would leave the others waiting.
                    if last_good is None:
                        raise RuntimeError(f"rank {self.dist.rank}: the first micro-batch lost all its items "
                                           "while loading (see the dropped counts); fix or remove those rows")
                    log.warning("a micro-batch lost all its items while loading; a zero-weighted repeat of the "
                                "previous one keeps the ranks in step")
                    batch, weight = last_good, 0.0
                else:
                    batch = last_good = self._to_device(batch)
                with self._grad_sync(last=i == self.accum - 1), self._autocast():
                    loss = self.wrapped(batch)
                (loss * weight / self.accum).backward()
                if weight:
                    loss_sum += float(loss.detach()) / self.accum
                    tokens += int(batch["attention_mask"].sum())
                    items += len(batch["ids"])
                    flops += self.flops.micro_batch(self.stage, batch)
            if float(self.t.max_grad_norm) > 0:
                torch.nn.utils.clip_grad_norm_(params, float(self.t.max_grad_norm))
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.steps_this_call += 1
            elapsed = time.perf_counter() - start
            if self.step % max(1, int(cfg.log.every_steps)) == 0 or self.step == self.total_steps:
                w = self.dist.world
                loss_avg = distributed.all_reduce_sum(loss_sum, self.dist) / w
                tok = distributed.all_reduce_sum(tokens, self.dist)
                total_flops = distributed.all_reduce_sum(flops, self.dist)
                self.metrics.write(stage=self.stage, step=self.step, epoch=self.step / self.steps_per_epoch,
                                   split="train", loss=f"{loss_avg:.6f}", lr=f"{lr:.3e}",
                                   tokens_per_s=f"{tok / elapsed:.1f}", items=items * w,
                                   tflops_per_s=f"{total_flops / elapsed / 1e12:.4f}")
                log.info("stage %d step %d/%d loss %.4f lr %.2e %.0f tokens/s", self.stage, self.step,
                         self.total_steps, loss_avg, lr, tok / elapsed)
            if self.step % self.steps_per_epoch == 0:
                self._end_of_epoch()
            every_eval = int(cfg.eval.every_steps)
            if every_eval > 0 and self.step % every_eval == 0 and self.step < self.total_steps:
                self.evaluate()
            done = self.step >= self.total_steps
            if done:
                self.evaluate()
            every_save = int(cfg.checkpoint.every_steps)
            stop = bool(interrupt) and self.steps_this_call >= int(interrupt) and not done
            if done or stop or (every_save > 0 and self.step % every_save == 0):
                self.save_checkpoint(done=done)
            if stop:
                log.info("interrupt_after_steps=%s reached at step %d; rerun to continue", interrupt, self.step)
                raise _Interrupted

    @torch.no_grad()
    def evaluate(self) -> float | None:
        n_eval = self.census[self.stage].eval
        if n_eval == 0 or int(self.cfg.eval.max_items) <= 0:
            return None
        self.wrapped.eval()
        total, count = 0.0, 0
        core = distributed.unwrap(self.wrapped)
        for batch in self._loader("eval", max_items=int(self.cfg.eval.max_items)):
            batch.pop("dropped")
            if not batch["ids"]:
                continue
            with self._autocast():
                loss = core(self._to_device(batch))
            total += float(loss) * len(batch["ids"])
            count += len(batch["ids"])
        if count:
            self.metrics.write(stage=self.stage, step=self.step, epoch=self.step / self.steps_per_epoch,
                               split="eval", loss=f"{total / count:.6f}", items=count)
            log.info("stage %d step %d eval loss %.4f on %d items", self.stage, self.step, total / count, count)
        return total / count if count else None

    # ------------------------------------------------------------------ checkpoint
    def save_checkpoint(self, done: bool) -> None:
        if not self.cfg.checkpoint.enabled:
            return
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        weights = get_model_state_dict(self.model, options=opts)
        optim = get_optimizer_state_dict(self.model, self.optimizer, options=opts)
        if self.dist.main:
            state = {"stage": self.stage, "step": self.step, "done": done, "total_steps": self.total_steps,
                     "steps_per_epoch": self.steps_per_epoch, "optimizer": optim,
                     "scheduler": self.scheduler.state_dict(), "rng": ckpt.rng_state()}
            path = ckpt.save(self.run_dir, self.stage, self.step, weights, state,
                             keep_last=int(self.cfg.checkpoint.keep_last), config_yaml=to_yaml(self.cfg))
            log.info("saved %s", path)
        distributed.barrier(self.dist)

    # ------------------------------------------------------------------ all stages
    def run(self) -> None:
        try:
            for stage in self.stages:
                if self.setup(stage):
                    self.train()
                    del self.wrapped, self.model, self.optimizer, self.scheduler
        except _Interrupted:
            pass
        finally:
            self.metrics.close()
            distributed.shutdown(self.dist)


class _Interrupted(Exception):
    """Raised to end an invocation early after `interrupt_after_steps` (a checkpoint is saved)."""


def _log_to_file(path: Path) -> None:
    root = logging.getLogger("omni")
    root.setLevel(logging.INFO)
    if not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(path) for h in root.handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.addHandler(handler)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)


def train(cfg: DictConfig) -> Path:
    """Run the recipe for `cfg`; returns the run folder."""
    recipe = Recipe(cfg)
    recipe.run()
    return recipe.run_dir


def main(argv: list[str] | None = None) -> None:
    command_line(train, __doc__, argv)


if __name__ == "__main__":
    main()
