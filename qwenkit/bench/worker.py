"""One system, one workload, in this process: prints a JSON result line. Run by qwenkit.bench.runner."""
import argparse
import json
import resource
import statistics
import sys
import time

import torch

from qwenkit.bench.machine import weight_bytes_per_token

W1_PROMPT = "Write a short story about a robot who learns to paint."


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def qwenkit_single_stream(model: str, quant: str, new_tokens: int, repeats: int, dtype: str = "auto",
                          compile: bool = False) -> dict:
    from qwenkit import LLM, SamplingParams
    llm = LLM(model, quant=quant, dtype=dtype, compile=compile)
    ids = llm.chat_prompt_ids([{"role": "user", "content": W1_PROMPT}])
    params = SamplingParams(temperature=0, max_tokens=new_tokens, ignore_eos=True)
    list(llm.generator.stream(ids, params.updated(max_tokens=8)))  # warm-up
    ttfts, rates = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        stream = llm.generator.stream(ids, params)
        next(stream)
        first = time.perf_counter()
        count = 1 + sum(1 for _ in stream)
        ttfts.append(first - started)
        rates.append((count - 1) / (time.perf_counter() - first))
    return {"load_s": llm.load_seconds, "ttft_ms": 1000 * statistics.median(ttfts),
            "decode_tok_s": statistics.median(rates), "quant": llm.quant,
            "weight_bytes_per_token": weight_bytes_per_token(llm.model), "prompt_tokens": len(ids)}


def _prompts(llm, count: int, low: int, high: int, seed: int) -> list[list[int]]:
    """Chat prompts of varied length built from a fixed text, deterministic by seed."""
    import random
    rng = random.Random(seed)
    text = ("the robot painted a quiet harbour at dawn while gulls argued over the fish market and "
            "old sailors mended nets beside the lighthouse")
    words = text.split()
    out = []
    for _ in range(count):
        target = rng.randrange(low, high + 1)
        text = " ".join(rng.choice(words) for _ in range(target))
        ids = llm.chat_prompt_ids([{"role": "user", "content": text}])
        out.append(ids[: target - 6] + ids[-6:] if len(ids) > target else ids)
    return out


def qwenkit_throughput(model: str, quant: str, requests: int, new_tokens: int, dense: bool = False) -> dict:
    """W2: all requests submitted at once to the batching engine; per-request time per output token."""
    from qwenkit import LLM, SamplingParams
    from qwenkit.layers.quant import densify
    llm = LLM(model, quant=quant, max_num_seqs=requests)
    dense_mb = densify(llm.model) / 2**20 if dense else 0
    prompts = _prompts(llm, requests, 32, 512, seed=0)
    params = SamplingParams(temperature=0, max_tokens=new_tokens, ignore_eos=True)
    llm.generate(prompts[:2], params.updated(max_tokens=4))  # warm-up
    engine = llm.engine
    started = time.perf_counter()
    rids = [engine.add_request(p, params) for p in prompts]
    first, last, counts = {}, {}, dict.fromkeys(rids, 0)
    while engine.has_unfinished():
        for rid, _ in engine.step():
            now = time.perf_counter()
            first.setdefault(rid, now)
            last[rid], counts[rid] = now, counts[rid] + 1
    elapsed = time.perf_counter() - started
    tpot = sorted((last[r] - first[r]) / max(counts[r] - 1, 1) for r in rids)
    return {"requests": requests, "prompt_tokens": [len(p) for p in prompts], "new_tokens": new_tokens,
            "output_tok_s": sum(counts.values()) / elapsed, "elapsed_s": elapsed,
            "tpot_p50_ms": 1000 * tpot[len(tpot) // 2], "tpot_p99_ms": 1000 * tpot[min(len(tpot) - 1,
                                                                                       int(0.99 * len(tpot)))],
            "preemptions": engine.scheduler.num_preemptions, "quant": llm.quant, "dense_weights_mb": dense_mb}


def qwenkit_shared_prefix(model: str, quant: str, requests: int, prefix_tokens: int) -> dict:
    """W3: requests sharing a long system prompt, one after another: first-token time cold vs prefix hit."""
    from qwenkit import LLM, SamplingParams
    llm = LLM(model, quant=quant)
    system = _prompts(llm, 1, prefix_tokens, prefix_tokens, seed=1)[0][:prefix_tokens]
    questions = _prompts(llm, requests, 12, 24, seed=2)
    params = SamplingParams(temperature=0, max_tokens=1, ignore_eos=True)
    engine = llm.engine
    llm.generate([questions[0], questions[1]], params)  # warm-up kernels, not the prefix
    ttfts = []
    for q in questions:
        started = time.perf_counter()
        rid = engine.add_request(system + q, params)
        while engine.has_unfinished():
            engine.step()
        ttfts.append(time.perf_counter() - started)
        engine.abort(rid)
    warm = statistics.median(ttfts[1:])
    return {"prefix_tokens": prefix_tokens, "requests": requests, "cold_ttft_ms": 1000 * ttfts[0],
            "hit_ttft_ms": 1000 * warm, "hit_over_cold": warm / ttfts[0], "block_hits": engine.blocks.hits}


def transformers_single_stream(model_path: str, dtype: str, new_tokens: int, repeats: int) -> dict:
    """transformers generate on the same weights: a GGUF (dequantized by transformers) or an HF folder."""
    from pathlib import Path

    import transformers
    started = time.perf_counter()
    path = Path(model_path)
    where = dict(gguf_file=path.name) if path.suffix == ".gguf" else {}
    folder = path.parent if path.suffix == ".gguf" else path
    tok = transformers.AutoTokenizer.from_pretrained(folder, **where)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), **where).eval()
    load = time.perf_counter() - started
    if tok.chat_template is None:  # qwenkit falls back to ChatML; give transformers the same template
        from qwenkit.tokenizer.chatml import CHATML_TEMPLATE
        tok.chat_template = CHATML_TEMPLATE
    ids = tok.apply_chat_template([{"role": "user", "content": W1_PROMPT}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    run = dict(attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=tok.eos_token_id)
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=8, min_new_tokens=8, **run)
        ttfts, rates = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            model.generate(ids, max_new_tokens=1, **run)
            ttft = time.perf_counter() - started
            started = time.perf_counter()
            model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **run)
            total = time.perf_counter() - started
            ttfts.append(ttft)
            rates.append((new_tokens - 1) / max(total - ttft, 1e-9))
    return {"load_s": load, "ttft_ms": 1000 * statistics.median(ttfts), "decode_tok_s": statistics.median(rates)}


def llama_cpp_single_stream(gguf: str, new_tokens: int, repeats: int, threads: int) -> dict:
    from llama_cpp import Llama
    started = time.perf_counter()
    llm = Llama(gguf, n_ctx=2048, n_threads=threads, verbose=False)
    load = time.perf_counter() - started
    messages = [{"role": "user", "content": W1_PROMPT}]
    ttfts, rates = [], []
    for _ in range(repeats + 1):
        llm.reset()
        started, first, count = time.perf_counter(), None, 0
        for _ in llm.create_chat_completion(messages, max_tokens=new_tokens, temperature=0, stream=True):
            first = first or time.perf_counter()
            count += 1
        ttfts.append(first - started)
        rates.append((count - 1) / (time.perf_counter() - first))
    return {"load_s": load, "ttft_ms": 1000 * statistics.median(ttfts[1:]),
            "decode_tok_s": statistics.median(rates[1:]),
            "note": "llama.cpp stops at end of turn; tok/s counts streamed chunks"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=["qwenkit", "transformers", "llama.cpp", "qwenkit-w2", "qwenkit-w3"])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--qwenkit-dtype", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--model", required=True)
    parser.add_argument("--quant", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dense-weights", action="store_true", help="W2: bf16 weight copies for many-row matmuls")
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    if a.system == "qwenkit":
        result = qwenkit_single_stream(a.model, a.quant, a.new_tokens, a.repeats, a.qwenkit_dtype, a.compile)
    elif a.system == "qwenkit-w2":
        result = qwenkit_throughput(a.model, a.quant, a.requests, a.new_tokens, a.dense_weights)
    elif a.system == "qwenkit-w3":
        result = qwenkit_shared_prefix(a.model, a.quant, a.requests, 1024)
    elif a.system == "transformers":
        result = transformers_single_stream(a.model, a.dtype, a.new_tokens, a.repeats)
    else:
        result = llama_cpp_single_stream(a.model, a.new_tokens, a.repeats, a.threads)
    result["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
