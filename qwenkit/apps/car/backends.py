"""Where the agent's replies come from: an in-process qwenkit LLM, any OpenAI-compatible endpoint (qwenkit serve,
Ollama, vLLM), or the regex baseline (baseline.py). Each turns chat messages into a Reply."""
import json
import re
from urllib.parse import urlsplit

from qwenkit.apps.car.agent import Reply, ToolCall
from qwenkit.apps.car.prompt import SYSTEM_PROMPT, TUNED_PROMPT
from qwenkit.errors import InvalidRequestError, QwenkitError
from qwenkit.sampling_params import SamplingParams

MAX_NEW_TOKENS = 96
CALL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)
THINK_END = "</think>"


def parse_call(text: str) -> ToolCall | None:
    """A call from one block's JSON text, or None when it is not {"name": str, "arguments": object}."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    arguments = obj.get("arguments", {})
    if isinstance(arguments, str):  # some models write the arguments as a JSON string, as OpenAI sends them
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    return ToolCall(obj["name"], arguments) if isinstance(arguments, dict) else None


def parse_reply(text: str) -> Reply:
    """Qwen-style output -> spoken content and tool calls. Reasoning before </think> is dropped; a block cut off by
    the token limit or holding broken JSON counts as invalid and is never spoken."""
    body = text.rsplit(THINK_END, 1)[-1]
    reply = Reply(CALL_BLOCK.sub("", body).replace("</tool_call>", "").strip(), raw=text)
    for block in CALL_BLOCK.finditer(body):
        add_call(reply, parse_call(block.group(1).strip()))
    return reply


def add_call(reply: Reply, call: ToolCall | None) -> None:
    if call is None:
        reply.invalid += 1
    else:
        reply.calls.append(call)


def greedy(max_tokens: int = MAX_NEW_TOKENS) -> SamplingParams:
    return SamplingParams(temperature=0.0, max_tokens=max_tokens)


class LLMBackend:
    """A qwenkit.llm.LLM in this process; `adapter` names one of the LoRA adapters the LLM was loaded with.

    With `constrained` (the default) every <tool_call> block is decoded under a grammar of the car's tools
    (tools.decoding_tools): the model still chooses freely between speaking and calling, and which tool to
    call, but a call's name, JSON and argument values are always ones the tools accept. A constrained request
    runs on the LLM's batching engine, whose prefix cache keeps the system prompt between turns.

    With an adapter the conversation starts from TUNED_PROMPT, the prompt qwenkit tunes car adapters on; the base
    model gets SYSTEM_PROMPT with the tool list."""

    def __init__(self, llm, adapter: str | None = None, max_tokens: int = MAX_NEW_TOKENS, constrained: bool = True):
        self.llm, self.adapter, self.params = llm, adapter, greedy(max_tokens)
        self.system = TUNED_PROMPT if adapter else SYSTEM_PROMPT
        self.constraint = tool_grammar(llm) if constrained else None

    def reply(self, messages: list[dict]) -> Reply:
        out = self.llm.chat(messages, self.params, adapter=self.adapter, constraint=self.constraint)
        return parse_reply(out[0].outputs[0].text)


def tool_grammar(llm):
    """A constraint factory for the engine: free text, and <tool_call> blocks valid for the car's tools."""
    from qwenkit.apps.car.tools import decoding_tools
    from qwenkit.engine.grammar import Grammars, tool_calls_format
    grammars = Grammars(llm.tokenizer, llm.model.config.vocab_size, llm.generator.eos_token_ids, llm.device)
    return grammars.factory(grammars.compile(tool_calls_format(decoding_tools(), required=False, parallel=True)))


class OpenAIBackend:
    """An OpenAI-compatible chat endpoint. The compact tool list rides in the system prompt, so no `tools` are sent;
    calls come back as <tool_call> text in the content, or as structured tool_calls when the server parses them.
    `tuned`: the endpoint serves a car adapter qwenkit tuned (`qwenkit serve --adapter car=DIR`, model
    "BASE:car"), which expects TUNED_PROMPT."""

    def __init__(self, endpoint: str, model: str | None = None, api_key: str | None = None,
                 max_tokens: int = MAX_NEW_TOKENS, http_client=None, tuned: bool = False):
        self.system = TUNED_PROMPT if tuned else SYSTEM_PROMPT
        from openai import OpenAI
        self.endpoint = base_url(endpoint)
        self.client = OpenAI(base_url=self.endpoint, api_key=api_key or "none", http_client=http_client,
                             max_retries=0)
        self.max_tokens = max_tokens
        self.model = model or self._first_model()

    def _first_model(self) -> str:
        import openai
        try:
            models = self.client.models.list().data
        except openai.OpenAIError as e:
            raise QwenkitError(f"{self.endpoint}: cannot list models ({e}); is the server running? "
                               "Pass --model to name one") from None
        if not models:
            raise QwenkitError(f"{self.endpoint}: the server lists no models; pass --model")
        return models[0].id

    def reply(self, messages: list[dict]) -> Reply:
        import openai
        try:
            response = self.client.chat.completions.create(model=self.model, messages=messages, temperature=0,
                                                           max_tokens=self.max_tokens)
        except openai.OpenAIError as e:
            raise QwenkitError(f"{self.endpoint}: the chat request failed ({e})") from None
        message = response.choices[0].message
        reply = parse_reply(message.content or "")
        for call in message.tool_calls or []:
            add_call(reply, parse_call(json.dumps({"name": call.function.name, "arguments": call.function.arguments})))
        return reply


def base_url(endpoint: str) -> str:
    """http://host:port -> http://host:port/v1; a URL with a path is taken as given."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequestError("endpoint", f"{endpoint!r} is not an http(s) URL such as http://127.0.0.1:11434")
    return endpoint.rstrip("/") + ("/v1" if parts.path in ("", "/") else "")
