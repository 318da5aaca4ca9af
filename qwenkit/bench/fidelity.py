"""`qwenkit bench fidelity`: what the fast paths cost in output, and what speculative decoding buys.

Quantized weights: each mode (int8 per channel, int4 groups) against the float32 model on a fixed set of chat
prompts: the cosine of the next-token logits at the end of every prompt, and how many of the first `agree_tokens`
greedy tokens match before the first difference. A difference usually comes where float32 itself is close to a
tie between two tokens (`margin`, its top-1 minus top-2 logit there), and from then on the texts differ.

Speculative decoding: the float32 model decoding the W1 story prompt alone and with an int4 draft of the same
weights; the tokens must be identical, and the report has both decode rates, the draft's acceptance rate and the
tokens each verifying forward gave.

Jump-forward: the in-car requests in `TOOL_REQUESTS`, each answered with a required tool call under the car's tool
grammar, decoded one token per forward pass and with jump-forward (forced tokens ride along in the next pass):
forward passes, seconds, and whether the two outputs are the same tokens."""
import json
import statistics
import time
from pathlib import Path

import torch

from qwenkit.bench.worker import W1_PROMPT

PROMPTS = [
    W1_PROMPT,
    "What is the capital of France?",
    "Explain why the sky is blue.",
    "Give me three tips for a long drive at night.",
    "Translate 'good morning' into Finnish and Swedish.",
    "Write a haiku about snow in Helsinki.",
    "How do I boil an egg?",
    "List four planets of the solar system.",
]
MODES = ("int8", "int4")
TOOL_REQUESTS = [
    "Take me to Ateneum.",
    "Find a charging station nearby.",
    "Set the temperature to 21 degrees.",
    "Warm the driver's seat to level 2 and set the fan to 3.",
    "Open the rear left window.",
    "Call Anna.",
    "Play some jazz.",
    "How much battery do I have left?",
]


def greedy(llm, prompt_ids: list[int], tokens: int) -> list[int]:
    from qwenkit import SamplingParams
    params = SamplingParams(temperature=0, max_tokens=tokens, ignore_eos=True)
    return list(llm.generate(prompt_ids, params)[0].outputs[0].token_ids)


def first_difference(a: list[int], b: list[int]) -> int:
    """How many leading tokens agree (len(a) when all do)."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def quantized_agreement(model: str, agree_tokens: int, threads: int) -> dict:
    from qwenkit import LLM
    reference = LLM(model, quant="none", threads=threads)
    prompts = [reference.chat_prompt_ids([{"role": "user", "content": p}]) for p in PROMPTS]
    ref_tokens = [greedy(reference, ids, agree_tokens) for ids in prompts]
    ref_logits = [reference.model.logits(torch.tensor(ids))[-1] for ids in prompts]
    margins = []
    for ids, tokens in zip(prompts, ref_tokens):   # float32's own top-1 minus top-2 at each generated position
        logits = reference.model.logits(torch.tensor(ids + tokens[:-1]))[len(ids) - 1:]
        top = logits.topk(2, dim=-1).values
        margins.append((top[:, 0] - top[:, 1]).tolist())
    del reference
    out = {}
    for mode in MODES:
        llm = LLM(model, quant=mode, threads=threads)
        rows = []
        for ids, tokens, logits, margin in zip(prompts, ref_tokens, ref_logits, margins):
            got = greedy(llm, ids, agree_tokens)
            cosine = torch.nn.functional.cosine_similarity(llm.model.logits(torch.tensor(ids))[-1], logits, dim=0)
            agree = first_difference(tokens, got)
            rows.append({"agree": agree, "cosine": round(float(cosine), 5),
                         "margin_at_difference": round(margin[agree], 3) if agree < len(margin) else None})
        out[mode] = {"prompts": rows, "all_agree": sum(r["agree"] == agree_tokens for r in rows),
                     "median_agree": statistics.median(r["agree"] for r in rows),
                     "min_cosine": min(r["cosine"] for r in rows)}
        del llm
    return out


def speculative(model: str, new_tokens: int, threads: int, draft_tokens: int = 4) -> dict:
    from qwenkit import LLM, SamplingParams
    params = SamplingParams(temperature=0, max_tokens=new_tokens, ignore_eos=True)
    result = {}
    for name, extra in (("plain", {}), ("speculative", {"draft_model": model, "num_draft_tokens": draft_tokens})):
        llm = LLM(model, quant="none", threads=threads, **extra)
        ids = llm.chat_prompt_ids([{"role": "user", "content": W1_PROMPT}])
        llm.generate(ids, params.updated(max_tokens=8))   # warm-up
        started = time.perf_counter()
        out = llm.generate(ids, params)[0].outputs[0]
        seconds = time.perf_counter() - started
        result[name] = {"tok_s": round(len(out.token_ids) / seconds, 2), "tokens": list(out.token_ids)}
        if extra:
            stats = llm.speculative_stats
            result[name] |= {"draft_quant": llm.draft_quant, "acceptance_rate": round(stats.acceptance_rate, 3),
                             "tokens_per_forward": round(stats.tokens_per_forward, 2)}
        del llm
    result["identical"] = result["plain"].pop("tokens") == result["speculative"].pop("tokens")
    result["speedup"] = round(result["speculative"]["tok_s"] / result["plain"]["tok_s"], 2)
    return result


def jump_forward(model: str, threads: int, max_tokens: int = 96) -> dict:
    """Each TOOL_REQUESTS request, with and without jump-forward in turn (alternating which goes first), on the
    default quantization. On the embedded model this is the car assistant as it runs: the shipped adapter, its
    short prompt, calls when the model chooses them. Any other model gets the tool list and must call a tool."""
    from qwenkit import LLM, SamplingParams
    from qwenkit.apps.car import SHIPPED_ADAPTER
    from qwenkit.apps.car.prompt import SYSTEM_PROMPT, TUNED_PROMPT
    from qwenkit.apps.car.tools import decoding_tools
    from qwenkit.engine.grammar import Grammars, tool_calls_format
    from qwenkit.errors import QwenkitError
    from qwenkit.store import resolve
    try:
        car = Path(model).resolve() == resolve("smollm2:135m").path.resolve()
    except QwenkitError:   # the embedded model is not installed
        car = False
    llm = LLM(model, threads=threads, adapters={"car": str(SHIPPED_ADAPTER)} if car else None)
    adapter, system = ("car", TUNED_PROMPT) if car else (None, SYSTEM_PROMPT)
    grammars = Grammars(llm.tokenizer, llm.model.config.vocab_size, llm.generator.eos_token_ids, llm.device)
    constraint = grammars.factory(grammars.compile(tool_calls_format(decoding_tools(), required=not car,
                                                                     parallel=True)))
    params = SamplingParams(temperature=0, max_tokens=max_tokens)
    engine = llm.engine
    passes = 0
    step = engine.step
    def counted():
        nonlocal passes
        passes += 1
        return step()
    engine.step = counted
    totals = {mode: {"tokens": 0, "forward_passes": 0, "seconds": 0.0} for mode in ("plain", "jump_forward")}
    identical = 0
    messages = [[{"role": "system", "content": system}, {"role": "user", "content": r}] for r in TOOL_REQUESTS]
    llm.chat(messages[0], params, constraint=constraint, adapter=adapter)   # warm-up: the grammar's first use
    for i, message in enumerate(messages):
        tokens = {}
        for mode in (("plain", "jump_forward") if i % 2 == 0 else ("jump_forward", "plain")):
            engine.jump_forward, passes = mode == "jump_forward", 0
            started = time.perf_counter()
            out = llm.chat(message, params, constraint=constraint, adapter=adapter)[0].outputs[0]
            totals[mode]["seconds"] += time.perf_counter() - started
            totals[mode]["tokens"] += len(out.token_ids)
            totals[mode]["forward_passes"] += passes
            tokens[mode] = list(out.token_ids)
        identical += tokens["plain"] == tokens["jump_forward"]
    engine.step, engine.jump_forward = step, True
    for t in totals.values():
        t["seconds"] = round(t["seconds"], 3)
    return totals | {"requests": len(messages), "identical": identical, "car_adapter": car,
                     "speedup": round(totals["plain"]["seconds"] / totals["jump_forward"]["seconds"], 2)}


def run_fidelity(out_dir: Path, model: str, agree_tokens: int = 32, new_tokens: int = 128, threads: int = 2) -> dict:
    from rich.console import Console
    from rich.table import Table
    console = Console()
    torch.set_num_threads(threads)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "model": Path(model).name, "threads": threads,
              "agree_tokens": agree_tokens, "prompts": PROMPTS}
    with console.status(f"quantized greedy agreement over {len(PROMPTS)} prompts"):
        report["quantized"] = quantized_agreement(model, agree_tokens, threads)
    with console.status("speculative decoding, float32 target with an int4 draft"):
        report["speculative"] = speculative(model, new_tokens, threads)
    with console.status(f"jump-forward decoding on {len(TOOL_REQUESTS)} tool calls"):
        report["jump_forward"] = jump_forward(model, threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_fidelity.json").write_text(json.dumps(report, indent=2))
    table = Table(title=f"against float32, first {agree_tokens} greedy tokens")
    for column in ("mode", "prompts fully agreeing", "leading tokens agreeing, per prompt", "min logits cosine"):
        table.add_column(column)
    for mode, r in report["quantized"].items():
        table.add_row(mode, f"{r['all_agree']}/{len(PROMPTS)}", " ".join(str(p["agree"]) for p in r["prompts"]),
                      f"{r['min_cosine']:.5f}")
    console.print(table)
    s = report["speculative"]
    console.print(f"speculative ({new_tokens} tokens, {s['speculative']['draft_quant']} draft): "
                  f"{s['plain']['tok_s']} -> {s['speculative']['tok_s']} tok/s ({s['speedup']}x), "
                  f"{s['speculative']['acceptance_rate']:.0%} accepted, identical output: {s['identical']}")
    j = report["jump_forward"]
    console.print(f"jump-forward ({j['requests']} tool calls): forward passes {j['plain']['forward_passes']} -> "
                  f"{j['jump_forward']['forward_passes']} for {j['plain']['tokens']} -> {j['jump_forward']['tokens']} "
                  f"tokens, {j['plain']['seconds']} -> {j['jump_forward']['seconds']} s ({j['speedup']}x), "
                  f"identical output for {j['identical']}/{j['requests']}")
    return report
