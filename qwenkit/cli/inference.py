"""`qwenkit run` and `qwenkit show`."""
import sys
import time
from typing import Annotated

import typer

from qwenkit.cli.common import console, friendly_errors, interactive
from qwenkit.errors import InvalidRequestError
from qwenkit.llm import DEFAULT_MODEL

SAMPLE_PROMPT = "Write a haiku about running language models on your own computer."


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(show)


def _split_model_and_prompt(model: str | None, prompt: str | None) -> tuple[str, str | None]:
    """`qwenkit run "a prompt"` means the default model; the first word is a model only if it names one."""
    if model is not None and prompt is None and not _names_a_model(model):
        return DEFAULT_MODEL, model
    return model or DEFAULT_MODEL, prompt


def _names_a_model(ref: str) -> bool:
    from qwenkit.errors import QwenkitError
    from qwenkit.store import resolve
    try:
        resolve(ref)
    except QwenkitError:
        return " " not in ref and (":" in ref or "/" in ref or ref.endswith(".gguf"))  # reported by the loader
    return True


@friendly_errors
def run(
    model: Annotated[str | None, typer.Argument(
        help="Store name, HF folder or .gguf file [default: smollm2:135m]")] = None,
    prompt: Annotated[str | None, typer.Argument(help="Prompt; omit for an interactive chat")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt")] = None,
    temperature: Annotated[float | None, typer.Option(help="0 for greedy")] = None,
    top_p: Annotated[float | None, typer.Option()] = None,
    top_k: Annotated[int | None, typer.Option()] = None,
    min_p: Annotated[float | None, typer.Option()] = None,
    repetition_penalty: Annotated[float | None, typer.Option()] = None,
    presence_penalty: Annotated[float | None, typer.Option()] = None,
    frequency_penalty: Annotated[float | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Most new tokens per answer")] = 512,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string (repeatable)")] = None,
    think: Annotated[bool | None, typer.Option("--think/--no-think", help="Qwen3 thinking on or off")] = None,
    raw: Annotated[bool, typer.Option(help="Send the prompt as is, without the chat template")] = False,
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16")] = "auto",
    quant: Annotated[str, typer.Option(help="Weight quantization: auto, none, int8, int4")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads")] = None,
    compile: Annotated[bool, typer.Option(help="torch.compile the decode step: faster tokens, 10-50 s to start")]
    = False,
    max_model_len: Annotated[int | None, typer.Option(help="Context length limit")] = None,
    adapter: Annotated[str | None, typer.Option(help="A PEFT LoRA adapter folder to apply to the model")] = None,
    draft: Annotated[str | None, typer.Option(
        help="Speculative decoding: a smaller model with the same tokenizer proposes tokens (greedy only)")] = None,
    draft_tokens: Annotated[int, typer.Option(help="Tokens the --draft model proposes per step")] = 4,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print load time and speed")] = False,
) -> None:
    """Chat with a model: stream one answer to PROMPT, or an interactive chat on a terminal."""
    from qwenkit.store import enforce_offline
    enforce_offline()
    model, prompt = _split_model_and_prompt(model, prompt)
    if prompt is None and not interactive():
        prompt = sys.stdin.read().strip() if not sys.stdin.isatty() else ""
        prompt = prompt or SAMPLE_PROMPT
    from qwenkit.llm import LLM
    with console.status(f"loading {model}"):
        llm = LLM(model, dtype=dtype, device=device, quant=quant, max_model_len=max_model_len, threads=threads,
                  compile=compile, adapters={"adapter": adapter} if adapter else None, draft_model=draft,
                  num_draft_tokens=draft_tokens)
    lora = "adapter" if adapter else None
    if verbose:
        drafted = f"; draft {draft}: {llm.draft_quant}" if draft else ""
        console.print(f"[dim]loaded {model} in {llm.load_seconds:.2f} s (weights: {llm.quant}{drafted})[/]")
    params = llm.get_default_sampling_params().updated(
        temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p, repetition_penalty=repetition_penalty,
        presence_penalty=presence_penalty, frequency_penalty=frequency_penalty, seed=seed, max_tokens=max_tokens,
        stop=stop)
    if draft and (reason := llm.draft_skip_reason(params, lora)):
        raise InvalidRequestError("--draft", f"{reason}; speculative decoding gives only greedy answers: pass "
                                  "--temperature 0, and no penalties or --adapter")
    template_kwargs = {} if think is None else {"enable_thinking": think}
    messages = [{"role": "system", "content": system}] if system else []
    if prompt is not None:
        if raw:
            _print_stream(llm, llm.stream(prompt, params, adapter=lora), verbose)
        else:
            messages.append({"role": "user", "content": prompt})
            _print_stream(llm, llm.stream_chat(messages, params, chat_template_kwargs=template_kwargs,
                                               adapter=lora), verbose)
        return
    _chat_loop(llm, messages, params, template_kwargs, verbose, lora)


def _chat_loop(llm, messages: list[dict], params, template_kwargs: dict, verbose: bool, lora: str | None) -> None:
    console.print(f"[dim]chatting with {llm.name}; /bye or Ctrl-D to quit, /clear to forget the conversation[/]")
    system = list(messages)
    while True:
        try:
            line = console.input("[bold green]>>> [/]").strip()
        except EOFError:
            return
        if line in ("/bye", "/exit", "/quit"):
            return
        if line == "/clear":
            messages[:] = system
            continue
        if not line:
            continue
        messages.append({"role": "user", "content": line})
        answer = _print_stream(llm, llm.stream_chat(messages, params, chat_template_kwargs=template_kwargs,
                                                    adapter=lora), verbose)
        messages.append({"role": "assistant", "content": answer})


def _print_stream(llm, deltas, verbose: bool) -> str:
    started, first, count, pieces = time.perf_counter(), None, 0, []
    for delta in deltas:
        first = first or time.perf_counter()
        count += 1
        pieces.append(delta.text)
        sys.stdout.write(delta.text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    if verbose and first is not None:
        done = time.perf_counter()
        decode = (count - 1) / (done - first) if count > 1 and done > first else 0.0
        console.print(f"[dim]{count} tokens; first token {1000 * (first - started):.0f} ms; "
                      f"decode {decode:.1f} tok/s[/]")
        if stats := llm.speculative_stats:
            console.print(f"[dim]draft: {stats.acceptance_rate:.0%} of {stats.proposed} proposed tokens accepted; "
                          f"{stats.tokens_per_forward:.2f} tokens per target forward[/]")
    return "".join(pieces)


@friendly_errors
def show(
    model: Annotated[str, typer.Argument(help="Store name, HF folder or .gguf file")] = DEFAULT_MODEL,
    template: Annotated[bool, typer.Option(help="Print the whole chat template")] = False,
) -> None:
    """Describe a model: architecture, size, quantization, context, template, stop tokens."""
    from rich.table import Table

    from qwenkit.loading import load_checkpoint
    from qwenkit.store import enforce_offline, resolve
    enforce_offline()
    resolved = resolve(model)
    ck = load_checkpoint(resolved.path)
    if template:
        print(ck.tokenizer.chat_template or "(none: qwenkit's built-in ChatML template is used)")
        return
    c = ck.config
    params = sum(t.numel() for k, t in ck.tensors.items() if not (c.tie_word_embeddings and k == "lm_head.weight"))
    eos = ", ".join(f"{i} {ck.tokenizer.decode([i], skip_special_tokens=False)!r}" for i in ck.generation.eos_token_ids)
    rows = [
        ("path", str(resolved.path)), ("format", ck.format), ("architecture", c.architecture),
        ("parameters", _human(params)), ("stored as", ck.dtype),
        ("layers", str(c.num_hidden_layers)), ("hidden size", str(c.hidden_size)),
        ("attention heads", f"{c.num_attention_heads} (kv {c.num_key_value_heads}, head dim {c.head_dim})"),
        ("context length", str(c.max_position_embeddings)), ("rope theta", f"{c.rope_theta:g}"),
        ("rope scaling", str(c.rope_scaling) if c.rope_scaling else "none"),
        ("tied embeddings", "yes" if c.tie_word_embeddings else "no"), ("vocabulary", str(len(ck.tokenizer))),
        ("stop tokens", eos), ("chat template", _template_summary(ck.tokenizer.chat_template)),
    ]
    if c.num_experts:
        rows.insert(6, ("experts", f"{c.num_experts}, {c.num_experts_per_tok} active, size {c.moe_intermediate_size}"))
    if resolved.adapter:
        rows.append(("adapter", str(resolved.adapter)))
    if resolved.system:
        rows.append(("system prompt", resolved.system))
    table = Table(show_header=False, box=None)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    from rich.console import Console
    Console().print(table)


def _human(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def _template_summary(template: str | None) -> str:
    if not template:
        return "none (built-in ChatML)"
    needles = (("tools", "tools"), ("thinking", "enable_thinking"), ("reasoning", "reasoning_content"))
    features = [f for f, needle in needles if needle in template]
    supports = f", supports {', '.join(features)}" if features else ""
    return f"{len(template)} chars{supports} (--template to print)"
