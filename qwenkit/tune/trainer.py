"""The training loop: accumulate micro-batches, sum gradients over ranks, clip, step; evaluate, keep the best,
checkpoint on schedule and on Ctrl-C, and stop with a reason when the loss goes NaN or exactly zero."""
import math
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch

from qwenkit.errors import QwenkitError
from qwenkit.tune import checkpoint as ckpt
from qwenkit.tune.config import TuneConfig, accumulation_steps, micro_batch
from qwenkit.tune.distributed import Ranks, all_reduce_sum, barrier
from qwenkit.tune.loss import head_cross_entropy, supervised_rows
from qwenkit.tune.order import DataOrder, shard, total_steps
from qwenkit.tune.report import ProgressLog, RunReport


class TrainingStopped(QwenkitError):
    """The loss went NaN/inf or exactly zero: training cannot teach anything from here."""


class Interrupted(QwenkitError):
    """Ctrl-C: a resumable checkpoint was saved."""


def lr_factor(step: int, warmup: int, total: int, floor: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay towards `floor` x lr."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


class Trainer:
    def __init__(self, model, rows: list, eval_rows: list, collate: Callable, config: TuneConfig, ranks: Ranks,
                 out: Path, adapter: Callable, report: RunReport, bf16: bool, log: ProgressLog | None = None):
        self.model, self.rows, self.eval_rows, self.collate = model, rows, eval_rows, collate
        self.config, self.ranks, self.out, self.adapter, self.report = config, ranks, out, adapter, report
        self.bf16, self.log = bf16, log
        self.params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not self.params:
            raise QwenkitError("no trainable parameters: LoRA matched no module of this model")
        self.micro = micro_batch(config, ranks.world_size, getattr(model, "module", model).config)
        self.accumulation = accumulation_steps(config, ranks.world_size, self.micro)
        self.order = DataOrder(len(rows), config.batch_size, config.seed)
        self.total = total_steps(len(rows), config.batch_size, config.epochs, config.max_steps)
        report.total_steps = self.total
        self.eval_every = config.eval_every if config.eval_every is not None else max(1, self.total // 10)
        self.save_every = config.save_every if config.save_every is not None else self.eval_every
        self.optimizer = torch.optim.AdamW([p for _, p in self.params], lr=config.lr,
                                           weight_decay=config.weight_decay)
        warmup = math.ceil(config.warmup_ratio * self.total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, partial(lr_factor, warmup=warmup, total=self.total, floor=config.min_lr_ratio))
        self.step = 0
        self.stop_requested = False
        self._timed = [0, 0.0]  # tokens and seconds of steps after the first

    # -- one optimizer step ----------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.ranks.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def micro_loss(self, batch: dict) -> tuple[torch.Tensor, int]:
        """Summed cross-entropy over the batch's supervised tokens, and how many there were."""
        device = self.ranks.device
        ids, labels = batch["input_ids"].to(device), batch["labels"].to(device)
        with self.autocast():
            hidden = self.model.packed_hidden_states(ids, batch["positions"].to(device),
                                                     batch["segments"].to(device),
                                                     checkpointing=self.config.activation_checkpointing)
        h, targets = supervised_rows(hidden, labels)
        dtype = torch.bfloat16 if self.bf16 else torch.float32
        return head_cross_entropy(h, self.model.lm_head.weight, targets, self.config.loss_chunk, dtype), len(targets)

    def train_step(self, indices: list[int]) -> tuple[float, int] | None:
        """Forward/backward this rank's share of the global batch, sum gradients over ranks, step.
        Returns (loss per supervised token, tokens), or None when Ctrl-C arrived before the update."""
        self.model.train()
        mine = shard(indices, self.ranks.rank, self.ranks.world_size)
        micro = self.micro
        loss_sum, supervised, tokens = 0.0, 0, 0
        for start in range(0, len(mine), micro):
            if self.stop_requested and not self.ranks.parallel:
                return None
            rows = [self.rows[i] for i in mine[start:start + micro]]
            loss, count = self.micro_loss(self.collate(rows))
            loss.backward()
            loss_sum += loss.item()
            supervised += count
            tokens += sum(len(r.input_ids) for r in rows)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for _, p in self.params]
        stats = torch.tensor([loss_sum, supervised, tokens, float(self.stop_requested)], dtype=torch.float64)
        flat = torch.cat([torch.cat([g.flatten().double() for g in grads]), stats.to(self.ranks.device)])
        flat = all_reduce_sum(self.ranks, flat)
        loss_sum, supervised, tokens, stops = flat[-4:].tolist()
        self.stop_requested = stops > 0
        offset = 0
        for (_, p), g in zip(self.params, grads):
            p.grad = (flat[offset:offset + g.numel()].view_as(g) / max(supervised, 1)).to(p.dtype)
            offset += g.numel()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for _, p in self.params], self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum / max(supervised, 1), int(tokens)

    # -- evaluation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> float | None:
        if not self.eval_rows:
            return None
        self.model.eval()
        mine = self.eval_rows[self.ranks.rank::self.ranks.world_size]
        loss_sum, count = 0.0, 0
        for start in range(0, len(mine), self.micro):
            loss, n = self.micro_loss(self.collate(mine[start:start + self.micro]))
            loss_sum, count = loss_sum + loss.item(), count + n
        total = all_reduce_sum(self.ranks, torch.tensor([loss_sum, count], dtype=torch.float64,
                                                        device=self.ranks.device)).tolist()
        return total[0] / max(total[1], 1)

    # -- the loop ---------------------------------------------------------------------------------------------
    def run(self) -> RunReport:
        report, started = self.report, time.perf_counter()
        wall_before = report.wall_seconds
        last_eval = report.eval_losses[-1][0] if report.eval_losses else None
        with _sigint(self):
            while self.step < self.total:
                rng = ckpt.capture_rng()
                begun = time.perf_counter()
                done = self.train_step(self.order.batch(self.step))
                if done is None:
                    self.optimizer.zero_grad(set_to_none=True)
                    ckpt.restore_rng(rng)
                    self.interrupt(rng)
                loss, tokens = done
                self.step += 1
                self.record(loss, tokens, time.perf_counter() - begun)
                self.check(loss)
                if self.eval_every and self.step % self.eval_every == 0:
                    last_eval = self.eval_and_keep_best()
                if self.stop_requested:
                    self.interrupt(ckpt.capture_rng())
                if self.save_every and self.step % self.save_every == 0 and self.step < self.total:
                    self.save(ckpt.capture_rng())
                report.wall_seconds = wall_before + time.perf_counter() - started
        if self.eval_rows and last_eval != self.step:
            self.eval_and_keep_best()
        self.save(ckpt.capture_rng())
        if self.ranks.main:
            ckpt.write_final(self.out, self.adapter())
        report.status = "finished"
        report.wall_seconds = wall_before + time.perf_counter() - started
        return report

    def record(self, loss: float, tokens: int, seconds: float) -> None:
        r = self.report
        r.steps, r.tokens, r.train_seconds = self.step, r.tokens + tokens, r.train_seconds + seconds
        r.losses.append((self.step, loss))
        if self.step > 1 or self.total == 1:
            self._timed[0] += tokens
            self._timed[1] += seconds
            r.tokens_per_second = round(self._timed[0] / self._timed[1], 1)
        if self.log:
            self.log.step(self.step, loss, tokens / seconds)

    def check(self, loss: float) -> None:
        if not math.isfinite(loss):
            self.report.status = "stopped: loss is not finite"
            raise TrainingStopped(f"loss became {loss} at step {self.step}: lower lr (now {self.config.lr:g}), "
                                  "keep grad_clip on, or train with precision=fp32")
        if loss == 0.0:
            self.report.status = "stopped: loss is exactly zero"
            raise TrainingStopped(f"loss is exactly 0 at step {self.step}: no token in the batch is supervised "
                                  "(check that examples have assistant replies) or the model has collapsed")

    def eval_and_keep_best(self) -> int:
        loss = self.evaluate()
        if loss is None:
            return self.step
        self.report.eval_losses.append((self.step, loss))
        better = self.report.best is None or loss < self.report.best["eval_loss"]
        if better:
            self.report.best = {"step": self.step, "eval_loss": loss}
            if self.ranks.main:
                ckpt.write_best(self.out, self.adapter(), self.report.best)
        if self.log:
            self.log.say(f"step {self.step}: eval loss {loss:.4f}" + ("  (best so far)" if better else ""))
        return self.step

    # -- checkpoints ------------------------------------------------------------------------------------------
    def state(self) -> dict:
        r = self.report
        return {"step": self.step, "world_size": self.ranks.world_size,
                "data_position": self.step * self.config.batch_size, "epoch": self.order.epoch_at(self.step),
                "params": {n: p.detach().cpu().clone() for n, p in self.params},
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "report": {"losses": r.losses, "eval_losses": r.eval_losses, "best": r.best, "tokens": r.tokens,
                           "train_seconds": r.train_seconds, "wall_seconds": r.wall_seconds,
                           "timed": list(self._timed)}}

    def save(self, rng: dict) -> Path:
        if self.ranks.main:
            ckpt.begin_checkpoint(self.out, self.step)
        barrier(self.ranks)
        staged = ckpt.staging_dir(self.out, self.step)
        ckpt.write_rank_state(staged, self.ranks.rank, rng)
        if self.ranks.main:
            ckpt.write_main_state(staged, self.adapter(), self.state())
        barrier(self.ranks)
        final = ckpt.publish(self.out, self.step, self.config.keep_checkpoints) if self.ranks.main else None
        barrier(self.ranks)
        return final or ckpt.CHECKPOINTS

    def restore(self, folder: Path) -> None:
        state, rng = ckpt.load_trainer_state(folder, self.ranks.rank)
        if state["world_size"] != self.ranks.world_size:
            raise QwenkitError(f"{folder} was saved by {state['world_size']} processes; resume with the same number")
        names = dict(self.params)
        with torch.no_grad():
            for name, value in state["params"].items():
                names[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = state["step"]
        r, saved = self.report, state["report"]
        r.losses, r.eval_losses, r.best = [tuple(x) for x in saved["losses"]], saved["eval_losses"], saved["best"]
        r.tokens, r.train_seconds, r.wall_seconds = saved["tokens"], saved["train_seconds"], saved["wall_seconds"]
        r.steps, self._timed = self.step, list(saved["timed"])
        ckpt.restore_rng(rng)

    def interrupt(self, rng: dict) -> None:
        folder = self.save(rng)
        self.report.status = "interrupted"
        raise Interrupted(f"interrupted at step {self.step}/{self.total}; saved {folder}")


@contextmanager
def _sigint(trainer: Trainer):
    """First Ctrl-C: finish cleanly at the next micro-batch with a checkpoint. Second: stop at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        if trainer.log:
            trainer.log.say("stopping: saving a checkpoint to resume from (Ctrl-C again to quit without it)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
