"""OpenAI-compatible endpoints: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings.
A request's `model` may name a LoRA adapter: BASE:ADAPTER or the adapter's own name."""
import asyncio
import base64
import json
import secrets
import struct
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from qwenkit.engine import grammar
from qwenkit.errors import InvalidRequestError
from qwenkit.outputs import TokenLogprob
from qwenkit.server import generation as gen
from qwenkit.server.generation import Choice
from qwenkit.server.parsing import Delta
from qwenkit.server.protocol import ChatRequest, CompletionRequest, EmbeddingRequest

router = APIRouter(prefix="/v1", tags=["OpenAI"])


@router.get("/models")
async def list_models(request: Request):
    pool = request.app.state.pool
    data = []
    for m in pool.models.values():
        entry = {"id": m.name, "object": "model", "created": int(m.loaded_at or request.app.state.started),
                 "owned_by": "qwenkit"}
        if m.worker is not None:
            entry["max_model_len"] = m.worker.llm.max_model_len
        data.append(entry)
        data += [entry | {"id": f"{m.name}:{name}", "parent": m.name, "root": folder}
                 for name, folder in m.adapters.items()]
    return {"object": "list", "data": data}


# -- chat ----------------------------------------------------------------------------------------------------
@router.post("/chat/completions")
async def chat_completions(body: ChatRequest, request: Request):
    worker, adapter = await request.app.state.pool.open(body.model)
    tools = [t.model_dump(exclude_none=True) for t in body.tools or []]
    choice = body.tool_choice or "auto"
    offered = tools if tools and choice != "none" else None
    prompt = gen.chat_prompt(worker, body.messages, offered, body.chat_template_kwargs)
    params = gen.sampling(worker, **_sampling_fields(body), max_tokens=body.max_completion_tokens or body.max_tokens,
                          logprobs=(body.top_logprobs or 0) if body.logprobs else None)
    constraint = await asyncio.to_thread(
        lambda: gen.grammar_for(worker, prompt, _answer_format(body, tools, choice), params.max_tokens,
                                body.thinking_budget))
    rid, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
    choices = [Choice.make(i, prompt) for i in range(params.n)]
    stream = gen.deltas(request, worker, prompt.ids, params, constraint, body.stream, adapter)
    head = {"id": rid, "created": created, "model": body.model}
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return _sse(_chat_chunks(stream, choices, head, prompt.ids, usage, body.logprobs))
    async for delta in stream:
        choices[delta.index].add(delta)
    return {**head, "object": "chat.completion", "choices": [_chat_choice(c, body.logprobs) for c in choices],
            "usage": _usage(prompt.ids, choices)}


def _answer_format(body: ChatRequest, tools: list[dict], choice) -> dict | None:
    """The grammar the reply must follow: tool calls when tool_choice is required or a named function (one
    call at most with parallel_tool_calls false, also under auto), else the response_format; None: free."""
    forced = _forced_tools(tools, choice)
    if forced:
        return grammar.tool_calls_format(forced, required=True, parallel=body.parallel_tool_calls)
    schema, json_object = _response_format(body.response_format)
    if schema is not None or json_object:
        return grammar.json_format(schema, "response_format.json_schema.schema")
    if tools and choice == "auto" and not body.parallel_tool_calls:
        return grammar.tool_calls_format(tools, required=False, parallel=False)
    return None


def _forced_tools(tools: list[dict], choice) -> list[dict] | None:
    """The tools a call must be made to (tool_choice required or a named function), else None."""
    if choice in ("none", "auto"):
        return None
    if not tools:
        raise InvalidRequestError("tool_choice", "needs `tools`")
    if choice == "required":
        return tools
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    match = [t for t in tools if t["function"]["name"] == name]
    if not match:
        raise InvalidRequestError("tool_choice", f"names no function in `tools`: {name!r}")
    return match


def _response_format(fmt: dict | None) -> tuple[dict | None, bool]:
    kind = (fmt or {}).get("type", "text")
    if kind == "text":
        return None, False
    if kind == "json_object":
        return None, True
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequestError("response_format.json_schema.schema", "must be a JSON schema object")
        return schema, False
    raise InvalidRequestError("response_format.type", f"must be text, json_object or json_schema, not {kind!r}")


def _sampling_fields(body) -> dict:
    return dict(n=body.n, seed=body.seed, stop=body.stop, temperature=body.temperature, top_p=body.top_p,
                presence_penalty=body.presence_penalty, frequency_penalty=body.frequency_penalty,
                logit_bias=body.logit_bias, top_k=body.top_k, min_p=body.min_p,
                repetition_penalty=body.repetition_penalty, min_tokens=body.min_tokens,
                ignore_eos=body.ignore_eos, stop_token_ids=body.stop_token_ids)


def _chat_choice(c: Choice, logprobs: bool) -> dict:
    message = {"role": "assistant", "content": c.content if c.content or not c.tool_calls else None}
    if c.reasoning:
        message["reasoning_content"] = c.reasoning
    if c.tool_calls:
        message["tool_calls"] = [{"id": t.id, "type": "function",
                                  "function": {"name": t.name, "arguments": t.arguments}} for t in c.tool_calls]
    return {"index": c.index, "message": message, "finish_reason": c.finish_reason,
            "logprobs": {"content": [_chat_logprob(lp) for lp in c.logprobs]} if logprobs else None}


def _chat_logprob(lp: TokenLogprob) -> dict:
    return {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.token.encode()),
            "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for _, t, v in lp.top]}


def _usage(prompt_ids: list[int], choices: list[Choice]) -> dict:
    completion = sum(c.tokens for c in choices)
    return {"prompt_tokens": len(prompt_ids), "completion_tokens": completion,
            "total_tokens": len(prompt_ids) + completion}


async def _chat_chunks(stream, choices: list[Choice], head: dict, prompt_ids: list[int], include_usage: bool,
                       logprobs: bool):
    def chunk(index: int, delta: dict, finish: str | None = None, lps: list | None = None) -> dict:
        choice = {"index": index, "delta": delta, "finish_reason": finish,
                  "logprobs": {"content": lps} if lps is not None else None}
        return {**head, "object": "chat.completion.chunk", "choices": [choice],
                **({"usage": None} if include_usage else {})}

    for c in choices:
        yield chunk(c.index, {"role": "assistant", "content": ""})
    async for delta in stream:
        c = choices[delta.index]
        parsed = c.add(delta)
        lps = [_chat_logprob(delta.logprob)] if logprobs and delta.logprob is not None else None
        body = _delta_body(parsed)
        if body or lps:
            yield chunk(c.index, body, None, lps)
        if delta.finish_reason:
            yield chunk(c.index, {}, c.finish_reason)
    if include_usage:
        yield {**head, "object": "chat.completion.chunk", "choices": [], "usage": _usage(prompt_ids, choices)}


def _delta_body(parsed: Delta) -> dict:
    body = {}
    if parsed.reasoning:
        body["reasoning_content"] = parsed.reasoning
    if parsed.content:
        body["content"] = parsed.content
    if parsed.tool_calls:
        calls = []
        for t in parsed.tool_calls:
            call = {"index": t.index, "function": {"arguments": t.arguments}}
            if t.id:
                call.update(id=t.id, type="function")
                call["function"]["name"] = t.name
            calls.append(call)
        body["tool_calls"] = calls
    return body


def _sse(chunks) -> StreamingResponse:
    async def events():
        async for c in chunks:
            yield f"data: {json.dumps(c, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"
    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# -- completions -----------------------------------------------------------------------------------------------
@router.post("/completions")
async def completions(body: CompletionRequest, request: Request):
    if body.echo:
        raise InvalidRequestError("echo", "is not supported")
    if body.suffix:
        raise InvalidRequestError("suffix", "is not supported")
    worker, adapter = await request.app.state.pool.open(body.model)
    ids = _prompt_ids(worker, body.prompt)
    params = gen.sampling(worker, **_sampling_fields(body), max_tokens=body.max_tokens, logprobs=body.logprobs)
    rid, created = f"cmpl-{secrets.token_hex(12)}", int(time.time())
    choices = [Choice.make(i, None) for i in range(params.n)]
    stream = gen.deltas(request, worker, ids, params, None, body.stream, adapter)
    head = {"id": rid, "object": "text_completion", "created": created, "model": body.model}
    want_lp = body.logprobs is not None
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return _sse(_completion_chunks(stream, choices, head, ids, usage, want_lp))
    async for delta in stream:
        choices[delta.index].add(delta)
    return {**head, "choices": [{"index": c.index, "text": c.text, "finish_reason": c.finish_reason,
                                 "logprobs": _completion_logprobs(c.logprobs, 0) if want_lp else None}
                                for c in choices], "usage": _usage(ids, choices)}


def _prompt_ids(worker, prompt) -> list[int]:
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        if len(prompt) != 1:
            raise InvalidRequestError("prompt", "only one prompt per request is supported; send one request each")
        prompt = prompt[0]
    if isinstance(prompt, list):
        vocab = worker.llm.model.config.vocab_size
        if any(not 0 <= t < vocab for t in prompt):
            raise InvalidRequestError("prompt", f"token ids must be in [0, {vocab})")
        return list(prompt)
    return worker.llm.encode(prompt)


def _completion_logprobs(lps: list[TokenLogprob], offset: int) -> dict:
    offsets, at = [], offset
    for lp in lps:
        offsets.append(at)
        at += len(lp.token)
    return {"tokens": [lp.token for lp in lps], "token_logprobs": [lp.logprob for lp in lps],
            "top_logprobs": [{t: v for _, t, v in lp.top} for lp in lps], "text_offset": offsets}


async def _completion_chunks(stream, choices: list[Choice], head: dict, ids: list[int], include_usage: bool,
                             want_lp: bool):
    async for delta in stream:
        c = choices[delta.index]
        offset = len(c.text)
        c.add(delta)
        lps = _completion_logprobs([delta.logprob], offset) if want_lp and delta.logprob else None
        yield {**head, "choices": [{"index": c.index, "text": delta.text, "logprobs": lps,
                                    "finish_reason": c.finish_reason}]}
    if include_usage:
        yield {**head, "choices": [], "usage": _usage(ids, choices)}


# -- embeddings ------------------------------------------------------------------------------------------------
@router.post("/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request):
    worker, adapter = await request.app.state.pool.open(body.model)
    inputs = body.input if isinstance(body.input, list) and body.input and not isinstance(body.input[0], int) \
        else [body.input]
    data, tokens = [], 0
    for i, item in enumerate(inputs):
        ids = _prompt_ids(worker, item) if not isinstance(item, str) or item else []
        if not ids:
            raise InvalidRequestError(f"input[{i}]", "is empty")
        vector = await worker.embed(ids, adapter)
        if body.dimensions and body.dimensions != len(vector):
            raise InvalidRequestError("dimensions", f"this model's embeddings have {len(vector)} dimensions")
        tokens += len(ids)
        encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() \
            if body.encoding_format == "base64" else vector
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    return JSONResponse({"object": "list", "data": data, "model": body.model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
