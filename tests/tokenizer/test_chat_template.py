"""Chat rendering and chat encoding against transformers' apply_chat_template, and template plumbing."""
import json
from datetime import datetime

import pytest

from qwenkit.errors import InvalidRequestError, ModelLoadError
from qwenkit.tokenizer import Tokenizer
from qwenkit.tokenizer.chatml import CHATML_TEMPLATE
from tests.tokenizer.conversations import CONVERSATIONS, TOOLED, TOOLS


@pytest.mark.parametrize("thinking", [{}, {"enable_thinking": False}], ids=["default", "no_thinking"])
@pytest.mark.parametrize("add_generation_prompt", [True, False], ids=["prompt", "no_prompt"])
@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
@pytest.mark.parametrize("name", ["qwen2.5", "qwen3"])
def test_matches_transformers(qwen_pair, name, conversation, add_generation_prompt, thinking):
    ours, hf = qwen_pair(name)
    messages = CONVERSATIONS[conversation]
    tools = TOOLS if conversation in TOOLED else None
    text = ours.render_chat(messages, tools, add_generation_prompt, **thinking)
    assert text == hf.apply_chat_template(messages, tools=tools, add_generation_prompt=add_generation_prompt,
                                          tokenize=False, **thinking)
    expected = hf.apply_chat_template(messages, tools=tools, add_generation_prompt=add_generation_prompt,
                                      tokenize=True, return_dict=False, **thinking)
    assert ours.encode_chat(messages, tools, add_generation_prompt, **thinking) == expected


def test_qwen3_thinking_switch(qwen_pair):
    ours, _ = qwen_pair("qwen3")
    messages = CONVERSATIONS["user_only"]
    assert ours.render_chat(messages).endswith("<|im_start|>assistant\n")
    no_thinking = ours.render_chat(messages, enable_thinking=False)
    assert no_thinking.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    history = ours.render_chat(CONVERSATIONS["reasoning"])
    assert "Simple addition" not in history     # thinking before the last user query is dropped


def test_qwen25_default_system_prompt(qwen_pair):
    ours, _ = qwen_pair("qwen2.5")
    default = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    text = ours.render_chat(CONVERSATIONS["user_only"])
    assert text.startswith(f"<|im_start|>system\n{default}<|im_end|>\n")


def test_content_parts_are_joined(qwen_pair):
    ours, _ = qwen_pair("qwen3")
    texts = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    parts = [{"role": "user", "content": texts}]
    assert ours.render_chat(parts) == ours.render_chat([{"role": "user", "content": "first\nsecond"}])
    with pytest.raises(InvalidRequestError, match=r"messages\[0\]\.content\[1\]"):
        ours.render_chat([{"role": "user", "content": [texts[0], {"type": "image_url"}]}])


def test_none_fields_and_reasoning_aliases(qwen_pair):
    ours, _ = qwen_pair("qwen3")
    calls = CONVERSATIONS["tool_calls"]
    with_none = [{**m, "content": None} if m.get("tool_calls") else m for m in calls]
    assert ours.render_chat(with_none, TOOLS) == ours.render_chat(calls, TOOLS)   # CALLS has content ""
    last = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning": "r"}]
    assert "<think>\nr\n</think>\n\na" in ours.render_chat(last, add_generation_prompt=False)


def chatml_tokenizer(qwen_folder, tmp_path, template: str | None) -> Tokenizer:
    config = json.loads((qwen_folder("qwen3") / "tokenizer_config.json").read_text())
    config["chat_template"] = template
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "tokenizer.json").symlink_to(qwen_folder("qwen3") / "tokenizer.json")
    return Tokenizer.from_hf_folder(tmp_path)


def test_chatml_fallback(qwen_folder, tmp_path):
    tok = chatml_tokenizer(qwen_folder, tmp_path, None)
    assert tok.chat_template is None
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                {"role": "assistant", "content": "A"}, {"role": "user", "content": "V"}]
    assert tok.render_chat(messages) == ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
                                         "<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nV<|im_end|>\n"
                                         "<|im_start|>assistant\n")
    assert tok.render_chat(messages[1:2], add_generation_prompt=False) == "<|im_start|>user\nU<|im_end|>\n"


def test_chatml_fallback_tools(qwen_folder, tmp_path):
    tok = chatml_tokenizer(qwen_folder, tmp_path, None)
    text = tok.render_chat(CONVERSATIONS["tool_calls"], TOOLS)
    system = text.split("<|im_end|>")[0]
    assert system.startswith("<|im_start|>system\n" + CONVERSATIONS["system"][0]["content"] + "\n\n# Tools\n")
    tool_lines = [json.dumps(tool, ensure_ascii=False) for tool in TOOLS]
    assert "<tools>\n" + "\n".join(tool_lines) + "\n</tools>" in system
    assert ('<|im_start|>assistant\n'
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Tokyo", "unit": "c"}}'
            '\n</tool_call>\n'
            '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call><|im_end|>\n') in text
    assert ('<|im_start|>user\n'
            '<tool_response>\n{"temp": 18, "sky": "cloudy"}\n</tool_response>\n'
            '<tool_response>\n{"temp": 24, "sky": "sunny"}\n</tool_response>\n'
            '<tool_response>\n14:05\n</tool_response><|im_end|>\n') in text
    assert tok.encode_chat(CONVERSATIONS["tool_calls"], TOOLS) == tok.encode(text, allow_special=True)


def test_template_helpers(qwen_folder, tmp_path):
    tok = chatml_tokenizer(qwen_folder, tmp_path, "{{ tools | tojson(indent=2, sort_keys=True) }}|"
                           "{{ strftime_now('%Y') }}|{{ eos_token }}|{{ bos_token is defined }}|{{ flag }}")
    text = tok.render_chat([], TOOLS, flag="on")
    assert text == "|".join([json.dumps(TOOLS, indent=2, sort_keys=True, ensure_ascii=False),
                             str(datetime.now().year), "<|im_end|>", "False", "on"])


def test_raise_exception_is_a_request_error(qwen_folder, tmp_path):
    tok = chatml_tokenizer(qwen_folder, tmp_path, "{% if messages[0].role != 'user' %}"
                           "{{ raise_exception('Conversation must start with a user message') }}{% endif %}")
    with pytest.raises(InvalidRequestError, match="Conversation must start with a user message"):
        tok.render_chat([{"role": "assistant", "content": "x"}])
    tok.chat_template = "{{ messages[0].content.nope() }}"
    with pytest.raises(InvalidRequestError, match="Tokenizer.chat_template failed on this conversation"):
        tok.render_chat([{"role": "user", "content": "x"}])
    tok.chat_template = "{{ messages[0] "
    with pytest.raises(ModelLoadError, match="syntax error on line 1") as e:
        tok.render_chat([{"role": "user", "content": "x"}])
    assert e.value.source == "Tokenizer.chat_template"


def test_syntax_error_names_the_file(qwen_folder, tmp_path):
    with pytest.raises(ModelLoadError, match="line 2") as e:
        chatml_tokenizer(qwen_folder, tmp_path, "{% for m in messages %}\n{{ m.content }\n{% endfor %}")
    assert e.value.source.endswith("tokenizer_config.json (chat_template)")
    (tmp_path / "chat_template.jinja").write_text("{% if %}")
    with pytest.raises(ModelLoadError) as e:
        Tokenizer.from_hf_folder(tmp_path)
    assert e.value.source == str(tmp_path / "chat_template.jinja")


def test_template_files_beside_the_config(qwen_folder, tmp_path):
    tok = chatml_tokenizer(qwen_folder, tmp_path, "from config")
    assert tok.chat_template == "from config"
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": "from json"}))
    assert Tokenizer.from_hf_folder(tmp_path).chat_template == "from json"
    (tmp_path / "chat_template.jinja").write_text("from jinja")
    assert Tokenizer.from_hf_folder(tmp_path).chat_template == "from jinja"


def test_named_tool_use_template(qwen_folder, tmp_path):
    templates = [{"name": "default", "template": "plain"},
                 {"name": "tool_use", "template": "tools: {{ tools | length }}"}]
    tok = chatml_tokenizer(qwen_folder, tmp_path, templates)
    assert tok.chat_template == "plain"
    assert tok.render_chat([{"role": "user", "content": "x"}]) == "plain"
    assert tok.render_chat([{"role": "user", "content": "x"}], TOOLS) == "tools: 2"


def test_chatml_template_is_valid_jinja():
    from qwenkit.tokenizer.chat_template import check_template
    check_template(CHATML_TEMPLATE, "chatml")
