"""One fine-tuning system on the tuning benchmark, in this process: prints a JSON result line.

Every system trains LoRA r16 (alpha 32, dropout 0.05) on all seven linear projections of each layer, on the
same packed rows, for `warmup` steps that are not timed and then `steps` timed optimizer steps of an
effective batch of `batch` rows. Tokens/s counts every token of every row (all systems see full rows).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

from qwenkit.bench.worker import peak_rss_mb

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def load_rows(model: str, data: Path, seq_len: int, rows: int) -> list:
    from qwenkit.bench.tune_data import full_rows
    from qwenkit.loading import load_checkpoint
    return full_rows(load_checkpoint(model).tokenizer, data, seq_len, rows)


def transformers_peft(model: str, data: Path, dtype: str, seq_len: int, batch: int, steps: int, warmup: int) -> dict:
    """transformers + PEFT the way their docs show it: the whole batch in one forward, labels on the rows."""
    import peft
    import transformers

    from qwenkit.tune.packing import collate
    rows = collate(load_rows(model, data, seq_len, batch * (steps + warmup)))
    path = Path(model)
    where = dict(gguf_file=path.name) if path.suffix == ".gguf" else {}
    folder = path.parent if path.suffix == ".gguf" else path
    base = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), **where)
    config = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=TARGETS, task_type="CAUSAL_LM")
    lm = peft.get_peft_model(base, config)
    lm.train()
    optimizer = torch.optim.AdamW([p for p in lm.parameters() if p.requires_grad], lr=2e-4)
    # transformers shifts labels itself: give it the unshifted targets (labels[i] is the target of token i-1)
    unshifted = torch.cat([torch.full_like(rows["labels"][:, :1], -100), rows["labels"][:, :-1]], dim=1)
    times, losses = [], []
    for step in range(warmup + steps):
        sl = slice(step * batch, (step + 1) * batch)
        started = time.perf_counter()
        loss = lm(input_ids=rows["input_ids"][sl], labels=unshifted[sl]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
        losses.append(loss.item())
    timed = sum(times[warmup:])
    return {"tokens_per_s": steps * batch * seq_len / timed, "step_s": timed / steps, "losses": losses}


def qwenkit_lora(model: str, data: Path, seq_len: int, batch: int, steps: int, warmup: int,
                 **overrides: str) -> dict:
    """qwenkit's own training step (the one `qwenkit tune` runs) with its defaults, on the same rows."""
    from rich.console import Console

    from qwenkit.tune.api import prepare_model, resolve_config
    from qwenkit.tune.distributed import setup
    from qwenkit.tune.packing import collate
    from qwenkit.tune.report import RunReport
    from qwenkit.tune.trainer import Trainer
    rows = load_rows(model, data, seq_len, batch * (steps + warmup))
    cfg = resolve_config(None, {"batch_size": batch, "max_length": seq_len, "eval_split": 0,
                                "max_steps": steps + warmup, **overrides})
    ranks = setup(cfg.device)
    lm, _, bf16 = prepare_model(model, cfg, ranks.device)
    report = RunReport(model=model, config=cfg.to_dict(), data={}, total_steps=0, world_size=1,
                       precision="bf16" if bf16 else "fp32", device=str(ranks.device), out="")
    trainer = Trainer(lm, rows, [], collate, cfg, ranks, Path("."), lambda: None, report, bf16)
    Console(stderr=True).print(f"qwenkit: {report.precision}, micro batch {trainer.micro} x "
                               f"{trainer.accumulation} accumulated, checkpointing {cfg.activation_checkpointing}")
    times, losses = [], []
    for step in range(warmup + steps):
        started = time.perf_counter()
        loss, _ = trainer.train_step(list(range(step * batch, (step + 1) * batch)))
        times.append(time.perf_counter() - started)
        losses.append(loss)
    timed = sum(times[warmup:])
    return {"tokens_per_s": steps * batch * seq_len / timed, "step_s": timed / steps, "losses": losses,
            "precision": report.precision, "micro_batch": trainer.micro,
            "checkpointing": cfg.activation_checkpointing}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=["qwenkit", "transformers"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="qwenkit tune overrides key=value")
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.system == "transformers":
        result = transformers_peft(a.model, a.data, a.dtype, a.seq_len, a.batch, a.steps, a.warmup)
    else:
        overrides = dict(kv.split("=", 1) for kv in a.set)
        result = qwenkit_lora(a.model, a.data, a.seq_len, a.batch, a.steps, a.warmup, **overrides)
    result["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
