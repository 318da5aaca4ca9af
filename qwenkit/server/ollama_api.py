"""Ollama-compatible endpoints: /api/chat and /api/generate (NDJSON streams), /api/tags, /api/show, /api/ps,
/api/embed, /api/version."""
import asyncio
import json
import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from qwenkit.engine import grammar
from qwenkit.errors import InvalidRequestError
from qwenkit.server import generation as gen
from qwenkit.server.generation import Choice
from qwenkit.server.pool import parse_keep_alive
from qwenkit.server.protocol import (
    OllamaChatRequest,
    OllamaEmbedRequest,
    OllamaGenerateRequest,
    OllamaModelRequest,
    OllamaOptions,
)

router = APIRouter(prefix="/api", tags=["Ollama"])
VERSION = "0.6.3"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def _worker(request: Request, model: str, keep_alive):
    """The model's worker and the LoRA adapter the name asks for (BASE:ADAPTER or the adapter's name)."""
    try:
        keep = parse_keep_alive(keep_alive) if keep_alive is not None else "default"
    except ValueError as e:
        raise InvalidRequestError("keep_alive", str(e)) from None
    return await request.app.state.pool.open(model, keep)


def _params(worker, options: OllamaOptions | None, num_prompt: int):
    o = options or OllamaOptions()
    max_tokens = o.num_predict if o.num_predict and o.num_predict > 0 else None
    if o.num_ctx:
        if num_prompt >= o.num_ctx:
            raise InvalidRequestError("options.num_ctx", f"the prompt has {num_prompt} tokens but num_ctx is "
                                      f"{o.num_ctx}; shorten the prompt or raise num_ctx")
        max_tokens = min(max_tokens or o.num_ctx, o.num_ctx - num_prompt)
    return gen.sampling(worker, max_tokens=max_tokens, temperature=o.temperature, top_k=o.top_k, top_p=o.top_p,
                        min_p=o.min_p, seed=o.seed, stop=o.stop, repetition_penalty=o.repeat_penalty,
                        presence_penalty=o.presence_penalty, frequency_penalty=o.frequency_penalty)


def _format(fmt) -> dict | None:
    if fmt == "json":
        return grammar.json_format(None, "format")
    if isinstance(fmt, dict):
        return grammar.json_format(fmt, "format")
    return None


def _tool_call(call) -> dict:
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        arguments = {}
    return {"function": {"name": call.name, "arguments": arguments}}


def _messages(messages: list[dict]) -> list[dict]:
    """Ollama's `thinking` and object-valued tool arguments, as chat templates expect them."""
    out = []
    for m in messages:
        m = {"content": "", **m}
        if m.get("thinking"):
            m["reasoning_content"] = m.pop("thinking")
        if m.get("tool_calls"):
            m["tool_calls"] = [{"type": "function", "function": c.get("function", c)} for c in m["tool_calls"]]
        out.append(m)
    return out


@router.post("/chat")
async def chat(body: OllamaChatRequest, request: Request):
    worker, adapter = await _worker(request, body.model, body.keep_alive)
    if not body.messages:
        return {"model": body.model, "created_at": _now(), "message": {"role": "assistant", "content": ""},
                "done": True, "done_reason": "load"}
    tools = [t.model_dump(exclude_none=True) for t in body.tools or []] or None
    kwargs = {} if body.think is None else {"enable_thinking": body.think}
    prompt = gen.chat_prompt(worker, _messages(body.messages), tools, kwargs)
    return await _respond(request, worker, adapter, body, prompt, chat=True)


@router.post("/generate")
async def generate(body: OllamaGenerateRequest, request: Request):
    worker, adapter = await _worker(request, body.model, body.keep_alive)
    if not body.prompt:
        return {"model": body.model, "created_at": _now(), "response": "", "done": True, "done_reason": "load"}
    if body.raw:
        prompt = gen.Prompt(worker.llm.encode(body.prompt))
    else:
        messages = ([{"role": "system", "content": body.system}] if body.system else []) + \
                   [{"role": "user", "content": body.prompt}]
        kwargs = {} if body.think is None else {"enable_thinking": body.think}
        prompt = gen.chat_prompt(worker, messages, None, kwargs)
    return await _respond(request, worker, adapter, body, prompt, chat=False)


async def _respond(request: Request, worker, adapter: str | None, body, prompt: gen.Prompt, chat: bool):
    started = time.perf_counter()
    params = _params(worker, body.options, len(prompt.ids))
    constraint = await asyncio.to_thread(
        lambda: gen.grammar_for(worker, prompt, _format(body.format), params.max_tokens))
    choice = Choice.make(0, prompt)
    stream = gen.deltas(request, worker, prompt.ids, params, constraint, body.stream, adapter)

    def piece(content: str, thinking: str, calls: list | None = None) -> dict:
        if chat:
            message = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            if calls:
                message["tool_calls"] = [_tool_call(c) for c in calls]
            return {"model": body.model, "created_at": _now(), "message": message, "done": False}
        out = {"model": body.model, "created_at": _now(), "response": content, "done": False}
        return out | ({"thinking": thinking} if thinking else {})

    def final() -> dict:
        elapsed = int((time.perf_counter() - started) * 1e9)
        return {"done": True, "done_reason": choice.finish_reason if choice.finish_reason in ("length", "abort")
                else "stop",
                "total_duration": elapsed, "load_duration": 0, "prompt_eval_count": len(prompt.ids),
                "prompt_eval_duration": 0, "eval_count": choice.tokens, "eval_duration": elapsed}

    if body.stream:
        async def lines():
            sent_calls = 0
            async for delta in stream:
                parsed = choice.add(delta)
                calls = choice.tool_calls
                closed = len(calls) - (1 if choice.parser.call is not None else 0)
                new_calls = calls[sent_calls:closed] if chat else []
                sent_calls = max(sent_calls, closed)
                if parsed.content or parsed.reasoning or new_calls:
                    yield json.dumps(piece(parsed.content, parsed.reasoning, new_calls)) + "\n"
            yield json.dumps(piece("", "") | final()) + "\n"
        return StreamingResponse(lines(), media_type="application/x-ndjson")
    async for delta in stream:
        choice.add(delta)
    return piece(choice.content, choice.reasoning, choice.tool_calls) | final()


# -- models --------------------------------------------------------------------------------------------------
def _details(worker) -> dict:
    if worker is None:
        return {"format": "", "family": "", "families": None, "parameter_size": "", "quantization_level": ""}
    llm = worker.llm
    params = sum(p.numel() for p in llm.model.parameters())
    return {"parent_model": "", "format": llm.checkpoint.format, "family": llm.checkpoint.config.architecture,
            "families": [llm.checkpoint.config.architecture], "parameter_size": f"{params / 1e6:.0f}M",
            "quantization_level": llm.quant}


def _entry(m) -> dict:
    return {"name": m.name, "model": m.name, "modified_at": _now(), "size": 0, "digest": "",
            "details": _details(m.worker)}


def _adapter_entries(m) -> list[dict]:
    entry = _entry(m)
    return [entry | {"name": f"{m.name}:{a}", "model": f"{m.name}:{a}", "details": entry["details"] |
                     {"parent_model": m.name}} for a in m.adapters]


@router.get("/tags")
async def tags(request: Request):
    return {"models": [e for m in request.app.state.pool.models.values() for e in [_entry(m), *_adapter_entries(m)]]}


@router.get("/ps")
async def ps(request: Request):
    models = []
    for m in request.app.state.pool.loaded():
        expires = "0001-01-01T00:00:00Z" if m.keep_alive is None else \
            datetime.fromtimestamp(time.time() + m.keep_alive, UTC).isoformat().replace("+00:00", "Z")
        models.append(_entry(m) | {"expires_at": expires, "size_vram": 0,
                                   "context_length": m.worker.llm.max_model_len})
    return {"models": models}


@router.post("/show")
async def show(body: OllamaModelRequest, request: Request):
    worker = await request.app.state.pool.get(body.model or body.name)
    llm = worker.llm
    cfg = llm.checkpoint.config
    template = llm.tokenizer.chat_template or ""
    capabilities = ["completion"] + (["tools"] if "tools" in template else []) + \
                   (["thinking"] if "enable_thinking" in template else [])
    return {"modelfile": "", "parameters": "", "template": template, "details": _details(worker),
            "model_info": {"general.architecture": cfg.architecture, "context_length": llm.max_model_len,
                           "embedding_length": cfg.hidden_size, "block_count": cfg.num_hidden_layers},
            "capabilities": capabilities, "modified_at": _now()}


@router.post("/embed")
async def embed(body: OllamaEmbedRequest, request: Request):
    worker, adapter = await _worker(request, body.model, body.keep_alive)
    started = time.perf_counter()
    inputs = [body.input] if isinstance(body.input, str) else body.input
    vectors, count = [], 0
    for i, text in enumerate(inputs):
        ids = worker.llm.encode(text)
        if not ids:
            raise InvalidRequestError(f"input[{i}]", "is empty")
        vectors.append(await worker.embed(ids, adapter))
        count += len(ids)
    return {"model": body.model, "embeddings": vectors, "total_duration": int((time.perf_counter() - started) * 1e9),
            "load_duration": 0, "prompt_eval_count": count}


@router.get("/version")
async def version():
    return {"version": VERSION}
