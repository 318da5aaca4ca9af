"""Chat templates rendered the way transformers renders them (sandboxed jinja2, same filters and globals)."""
import json
from collections.abc import Mapping
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from qwenkit.errors import InvalidRequestError, ModelLoadError

REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")


def raise_exception(message: str):
    raise InvalidRequestError("messages", f"rejected by the chat template: {message}")


def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
           separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


@cache
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


@lru_cache(maxsize=32)
def compile_template(text: str) -> jinja2.Template:
    return environment().from_string(text)


def check_template(text: str, source: str) -> jinja2.Template:
    try:
        return compile_template(text)
    except jinja2.TemplateSyntaxError as e:
        raise ModelLoadError(source, f"chat template syntax error on line {e.lineno}: {e.message}",
                             "fix the template, or supply a working chat template in its place") from e


def message_text(content: Any, field: str) -> Any:
    """Content as a string: OpenAI-style lists of text parts are joined with newlines."""
    if not isinstance(content, list):
        return content
    texts = []
    for i, part in enumerate(content):
        text = part.get("text") if isinstance(part, Mapping) and part.get("type", "text") == "text" else None
        if not isinstance(text, str):
            raise InvalidRequestError(f"{field}[{i}]",
                                      'only {"type": "text", "text": "..."} parts are supported')
        texts.append(text)
    return "\n".join(texts)


def prepare_messages(messages: list[Mapping]) -> list[dict]:
    """Drop None fields (content None becomes "", as OpenAI clients send it with tool calls and Qwen3's
    template needs a string), join text parts, and copy reasoning under the names templates read."""
    prepared = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(f"messages[{i}]", "should be an object with a role and content")
        message = {k: v for k, v in message.items() if v is not None or k == "content"}
        if "content" in message:
            message["content"] = message_text(message["content"] or "", f"messages[{i}].content")
        reasoning = next((message[k] for k in REASONING_FIELDS if k in message), None)
        if reasoning is not None:
            message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        prepared.append(message)
    return prepared


def render(template: str, source: str, messages: list[Mapping], tools: list[dict] | None,
           add_generation_prompt: bool, variables: dict[str, Any]) -> str:
    compiled = check_template(template, source)
    try:
        return compiled.render(messages=prepare_messages(messages), tools=tools, documents=None,
                               add_generation_prompt=add_generation_prompt, **variables)
    except InvalidRequestError:
        raise
    except (jinja2.TemplateError, TypeError, ValueError) as e:
        raise InvalidRequestError("messages", f"the chat template from {source} failed on this "
                                  f"conversation: {e}") from e
