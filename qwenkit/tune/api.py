"""`tune(model, data, out)`: LoRA fine-tuning from a JSONL file to a PEFT adapter folder, in one call."""
import hashlib
import random
from functools import partial
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from qwenkit.errors import InvalidRequestError
from qwenkit.tune import checkpoint as ckpt
from qwenkit.tune.config import TuneConfig, load_config, make_config
from qwenkit.tune.distributed import Ranks, barrier, setup, teardown
from qwenkit.tune.report import ProgressLog, RunReport, finish
from qwenkit.tune.trainer import Interrupted, Trainer, TrainingStopped

FREE_ON_RESUME = {"max_steps", "epochs", "eval_every", "save_every", "keep_checkpoints", "threads", "device"}


def tune(model: str, data: str | Path, out: str | Path, eval_data: str | Path | None = None,
         config: str | Path | TuneConfig | dict | None = None, *, resume: bool = False, force: bool = False,
         quiet: bool = False, **overrides) -> RunReport:
    """Train a LoRA adapter for `model` (store name, folder or .gguf) on `data` and write it to `out`.
    `config` is a YAML file, a dict or a TuneConfig; keyword overrides win over it. Returns the run's report,
    also written to out/report.json. Under `torchrun` every process calls this and each trains a shard."""
    cfg = resolve_config(config, overrides)
    ranks = setup(cfg.device)
    threads = torch.get_num_threads()
    try:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        return _run(model, Path(data), Path(out), Path(eval_data) if eval_data else None, cfg, ranks,
                    resume, force, quiet)
    finally:
        torch.set_num_threads(threads)
        teardown(ranks)


def resolve_config(config, overrides: dict) -> TuneConfig:
    if isinstance(config, TuneConfig):
        return make_config({**config.to_dict(), **overrides}) if overrides else config
    if isinstance(config, dict):
        return make_config({**config, **overrides})
    return load_config(config, overrides)


def _run(ref: str, data: Path, out: Path, eval_data: Path | None, cfg: TuneConfig, ranks: Ranks,
         resume: bool, force: bool, quiet: bool) -> RunReport:
    from qwenkit.tune.adapter import lora_state
    from qwenkit.tune.packing import collate
    console = Console(stderr=True, highlight=False, quiet=quiet or not ranks.main)
    ckpt.check_out(out, resume, force)
    barrier(ranks)  # every rank has looked before the main one writes
    model, checkpoint, bf16 = prepare_model(ref, cfg, ranks.device)
    rows, eval_rows, summary = prepare_data(checkpoint.tokenizer, data, eval_data, cfg, console)
    info = {"model": ref, "data": str(data), "eval_data": str(eval_data) if eval_data else None,
            "data_hash": rows_hash(rows), "config": cfg.to_dict()}
    if resume:
        check_resumable(out, info)
    elif ranks.main:
        ckpt.start_out(out, resume)
        ckpt.write_marker(out, info)
    barrier(ranks)
    report = RunReport(model=ref, config=cfg.to_dict(), data=summary, total_steps=0, world_size=ranks.world_size,
                       precision="bf16" if bf16 else "fp32", device=str(ranks.device), out=str(out))
    batches = partial(collate, multiple_of=cfg.pad_to_multiple_of)
    trainer = Trainer(model, rows, eval_rows, batches, cfg, ranks, out, lambda: lora_state(model, ref), report, bf16)
    if resume:
        trainer.restore(ckpt.latest_checkpoint(out))
    trainable = sum(p.numel() for _, p in trainer.params)
    console.print(f"training {trainable:,} LoRA parameters for {trainer.total - trainer.step} steps "
                  f"(from step {trainer.step}) of {cfg.batch_size} rows of up to {cfg.max_length} tokens: "
                  f"{trainer.micro} x {trainer.accumulation} accumulated x {ranks.world_size} processes, "
                  f"{report.precision} on {ranks.device}", soft_wrap=True)
    if trainer.total < 10 and not resume:
        console.print(f"[yellow]note:[/] only {trainer.total} optimizer steps; lower batch_size or raise epochs "
                      "to take more", soft_wrap=True)
    with ProgressLog(trainer.total, trainer.step, not quiet and ranks.main, console) as log:
        trainer.log = log
        try:
            trainer.run()
        except Interrupted as e:
            raise Interrupted(f"{e}. Continue with the same command plus --resume "
                              "(Python: tune(..., resume=True))") from None
        except (TrainingStopped, KeyboardInterrupt):
            if report.status == "running":
                report.status = "aborted"
            raise
        finally:
            if ranks.main:
                finish(report, out)
    console.print(f"adapter written to {out} (best eval loss in {out / 'best'})" if report.best
                  else f"adapter written to {out}")
    return report


def prepare_model(ref: str, cfg: TuneConfig, device: torch.device):
    """The frozen base with fresh LoRA layers (seeded), quantized if asked -> (model, checkpoint, bf16)."""
    from qwenkit.tune.adapter import apply_lora
    from qwenkit.tune.base import load_base, quantize_base
    from qwenkit.tune.lora import LoraConfig
    bf16 = use_bf16(cfg.precision, device)
    model, checkpoint = load_base(ref, torch.bfloat16 if bf16 else torch.float32, device)
    seed_everything(cfg.seed)
    apply_lora(model, LoraConfig(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, list(cfg.target_modules)))
    if cfg.base_quant != "none":
        quantize_base(model, 8 if cfg.base_quant == "int8" else 4)
    return model, checkpoint, bf16


def prepare_data(tokenizer, data: Path, eval_data: Path | None, cfg: TuneConfig, console: Console):
    """Examples -> tokens with loss masks -> packed rows, for training and evaluation; prints what it made."""
    from qwenkit.tune.packing import pack
    from qwenkit.tune.records import load_examples
    from qwenkit.tune.render import show_example, tokenize_examples
    examples = load_examples(data, cfg.data_format)
    if eval_data is not None:
        held_out = load_examples(eval_data, cfg.data_format)
    else:
        examples, held_out = split_eval(examples, cfg.eval_split, cfg.seed)
    args = (cfg.max_length, cfg.overlong, cfg.train_on_reasoning, cfg.chat_template_kwargs)
    train = tokenize_examples(tokenizer, examples, *args)
    rows = pack(train.items, cfg.max_length, seed=cfg.seed, enabled=cfg.packing)
    eval_rows = []
    if held_out:
        eval_rows = pack(tokenize_examples(tokenizer, held_out, *args).items, cfg.max_length, seed=cfg.seed,
                         enabled=cfg.packing)
    console.print(train.summary)
    console.print("one example, trained spans in [bold green]green[/]:")
    console.print(show_example(tokenizer, train.items[0], markup=True), soft_wrap=True)
    summary = {**_asdict(train.summary), "rows": len(rows), "eval_examples": len(held_out),
               "eval_rows": len(eval_rows), "eval_source": str(eval_data) if eval_data else
               (f"{cfg.eval_split:.0%} held out" if held_out else "none")}
    console.print(f"{len(rows):,} training rows ({'packed' if cfg.packing else 'one example each'}), "
                  f"{len(held_out):,} eval examples in {len(eval_rows):,} rows")
    return rows, eval_rows, summary


def split_eval(examples: list, share: float, seed: int) -> tuple[list, list]:
    """Hold out `share` of the examples (at least one) for evaluation, when there are two or more."""
    if share <= 0 or len(examples) < 2:
        return examples, []
    count = max(1, round(share * len(examples)))
    held = set(random.Random(seed).sample(range(len(examples)), count))
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def cpu_has_bf16() -> bool:
    """Native bf16 matmuls (AVX512-BF16 or AMX) through oneDNN; elsewhere bf16 is emulated and slower than fp32."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rows_hash(rows: list) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(np.asarray(row.input_ids, dtype=np.int64).tobytes())
        h.update(np.asarray(row.labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def check_resumable(out: Path, info: dict) -> None:
    saved = ckpt.read_marker(out)
    if saved.get("model") != info["model"]:
        raise InvalidRequestError("resume", f"{out} trained {saved.get('model')}, not {info['model']}")
    if saved.get("data_hash") != info["data_hash"]:
        raise InvalidRequestError("resume", f"the training data differs from the run in {out} (file, tokenizer "
                                  "or data settings changed); resume with the same data")
    for key, value in saved["config"].items():
        now = info["config"].get(key)
        if key not in FREE_ON_RESUME and now != value:
            raise InvalidRequestError(key, f"the run in {out} used {value!r}, not {now!r}; a resumed run keeps its "
                                      f"settings (only {', '.join(sorted(FREE_ON_RESUME))} may change)")


def _asdict(summary) -> dict:
    from dataclasses import asdict
    return asdict(summary)
