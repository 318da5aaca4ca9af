"""Loss masks through real chat templates (Qwen2.5, Qwen3, SmolLM2): exactly the assistant replies and their
closing <|im_end|> are trained on; Qwen3's think blocks as train_on_reasoning says; long examples handled."""
import json
from itertools import groupby

import pytest
from rich.console import Console

from qwenkit.loading import load_checkpoint
from qwenkit.tokenizer import Tokenizer
from qwenkit.tune.problems import DataError
from qwenkit.tune.records import load_examples
from qwenkit.tune.render import show_example, tokenize_examples

END = "<|im_end|>"
USER = {"role": "user", "content": "Hi!"}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


def call(city: str, content: str = "", id: str = "c1") -> dict:
    return {"role": "assistant", "content": content, "tool_calls": [
        {"id": id, "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}]}


def tool_call_text(city: str) -> str:
    arguments = json.dumps({"city": city})
    return f'<tool_call>\n{{"name": "get_weather", "arguments": {arguments}}}\n</tool_call>'


@pytest.fixture(scope="module")
def tokenizers(tiny_models, request):
    def get(name: str) -> Tokenizer:
        if name == "smollm2":
            return load_checkpoint(request.getfixturevalue("smollm2_gguf")).tokenizer
        return Tokenizer.from_hf_folder(tiny_models(name)[0])
    return get


@pytest.fixture(scope="module", params=["qwen2", "qwen3", "smollm2"])
def tok(request, tokenizers) -> Tokenizer:
    return tokenizers(request.param)


def tokenized(tokenizer, tmp_path, *records, max_length=1024, **options):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return tokenize_examples(tokenizer, load_examples(path), max_length, **options)


def runs(tokenizer, item, trained: bool = True) -> list[str]:
    return [tokenizer.decode([i for i, _ in run], skip_special_tokens=False)
            for flag, run in groupby(zip(item.ids, item.labels_mask), key=lambda p: p[1]) if flag == trained]


def test_replies_and_their_end_are_trained(tok, tmp_path):
    messages = [{"role": "system", "content": "Be brief."}, USER, {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Translate 'cat' to German."}, {"role": "assistant", "content": "Katze"}]
    [item] = tokenized(tok, tmp_path, {"messages": messages}).items
    assert runs(tok, item) == ["Hello." + END, "Katze" + END]
    assert item.ids == tok.encode_chat(messages, add_generation_prompt=False)
    assert item.labels() == [t if m else -100 for t, m in zip(item.ids[1:], item.labels_mask[1:])] + [-100]
    assert item.labels()[-1] == -100 and item.labels().count(tok.token_to_id(END)) == 2


def test_tool_calls_are_trained_and_tool_results_are_not(tok, tmp_path):
    messages = [{"role": "user", "content": "Weather in Paris, then Rome?"}, call("Paris"),
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                call("Rome", "Now Rome.", "c2"), {"role": "tool", "tool_call_id": "c2", "content": "rain"},
                {"role": "assistant", "content": "Sunny, then rain."}]
    [item] = tokenized(tok, tmp_path, {"messages": messages, "tools": [WEATHER]}).items
    assert runs(tok, item) == [tool_call_text("Paris") + END, "Now Rome.\n" + tool_call_text("Rome") + END,
                               "Sunny, then rain." + END]
    prompt = "".join(runs(tok, item, trained=False))
    assert '"name": "get_weather"' in prompt and "sunny" in prompt and "rain" in prompt


ANSWER = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
REASONED = [ANSWER[0], {**ANSWER[1], "reasoning_content": "Add them."}]
IN_CONTENT = [ANSWER[0], {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n4"}]


@pytest.mark.parametrize("train_on_reasoning", [False, True])
@pytest.mark.parametrize("messages, think", [(ANSWER, "\n\n"), (REASONED, "\nAdd them.\n"),
                                             (IN_CONTENT, "\nAdd them.\n")])
def test_qwen3_think_blocks(tokenizers, tmp_path, messages, think, train_on_reasoning, shared_qwen):
    tok = tokenizers("qwen3")
    data = tokenized(tok, tmp_path, {"messages": messages}, train_on_reasoning=train_on_reasoning)
    [item] = data.items
    block = f"<think>{think}</think>\n\n"
    if train_on_reasoning and think.strip():
        assert runs(tok, item) == [block + "4" + END]
        assert data.summary.reasoning_turns == 1
    else:  # the block is prompt, as at inference (an empty one is what enable_thinking=False adds)
        assert runs(tok, item) == ["4" + END]
        assert runs(tok, item, trained=False)[0].endswith("<|im_start|>assistant\n" + block)
        assert data.summary.reasoning_turns == 0
    assert item.ids == tok.encode_chat(messages, add_generation_prompt=False)


def test_qwen3_history_and_qwen25_drop_reasoning_as_their_templates_do(tokenizers, tmp_path, shared_qwen):
    messages = [USER, {"role": "assistant", "content": "A", "reasoning_content": "first"},
                {"role": "user", "content": "More?"}, {"role": "assistant", "content": "B", "reasoning_content": "r2"}]
    [item] = tokenized(tokenizers("qwen3"), tmp_path, {"messages": messages}, train_on_reasoning=True).items
    assert runs(tokenizers("qwen3"), item) == ["A" + END, "<think>\nr2\n</think>\n\nB" + END]
    [item] = tokenized(tokenizers("qwen2"), tmp_path, {"messages": messages}, train_on_reasoning=True).items
    assert runs(tokenizers("qwen2"), item) == ["A" + END, "B" + END]


def test_special_token_text_in_a_reply_is_plain_text(tokenizers, tmp_path):
    tok = tokenizers("qwen2")
    [item] = tokenized(tok, tmp_path, {"messages": [USER, {"role": "assistant", "content": "Type <|im_end|>."}]}).items
    trained = [i for i, m in zip(item.ids, item.labels_mask) if m]
    assert tok.decode(trained, skip_special_tokens=False) == "Type <|im_end|>." + END
    assert trained.count(tok.token_to_id(END)) == 1 and trained[-1] == tok.token_to_id(END)


def test_weight_zero_turns_are_context(tokenizers, tmp_path):
    tok = tokenizers("qwen3")
    messages = [USER, {"role": "assistant", "content": "Draft", "weight": 0}, {"role": "user", "content": "Again"},
                {"role": "assistant", "content": "Final"}]
    [item] = tokenized(tok, tmp_path, {"messages": messages}).items
    assert runs(tok, item) == ["Final" + END]
    assert "Draft" in "".join(runs(tok, item, trained=False))


def test_reply_starting_with_whitespace(tok, tmp_path):
    """A reply's first newline can merge with the header's into one token, which then stays prompt."""
    messages = [USER, {"role": "assistant", "content": "\n\n  Hi there"}]
    [item] = tokenized(tok, tmp_path, {"messages": messages}).items
    [trained] = runs(tok, item)
    assert trained.endswith("Hi there" + END) and ("\n\n  Hi there" + END).endswith(trained)
    assert item.ids == tok.encode_chat(messages, add_generation_prompt=False)


def test_long_examples_are_dropped_truncated_or_refused(tokenizers, tmp_path):
    tok = tokenizers("qwen3")
    short = {"messages": [USER, {"role": "assistant", "content": "Hello."}]}
    long_reply = {"messages": [USER, {"role": "assistant", "content": "word " * 100}]}
    long_prompt = {"messages": [{"role": "user", "content": "word " * 100}, {"role": "assistant", "content": "ok"}]}
    path = tmp_path / "data.jsonl"
    data = tokenized(tok, tmp_path, short, long_reply, long_prompt, max_length=40)
    summary = data.summary
    assert (summary.examples, summary.overlong, summary.dropped, summary.truncated) == (1, 2, 2, 0)
    assert summary.overlong_places == [f"{path}:2", f"{path}:3"]
    assert "longer than max_length: 2: dropped 2" in str(summary)
    data = tokenized(tok, tmp_path, short, long_reply, long_prompt, max_length=40, overlong="truncate")
    assert (data.summary.examples, data.summary.truncated, data.summary.dropped) == (2, 1, 1)
    assert [len(i.ids) for i in data.items] == [len(data.items[0].ids), 40] and data.items[1].line == 2
    assert runs(tok, data.items[1])[0].startswith("word word")
    with pytest.raises(DataError, match=f"{path}:2: [0-9]+ tokens, longer than max_length 40"):
        tokenized(tok, tmp_path, short, long_reply, max_length=40, overlong="error")
    with pytest.raises(DataError, match="raise max_length"):
        tokenized(tok, tmp_path, long_reply, max_length=40)


def test_show_example_and_summary(tokenizers, tmp_path):
    tok = tokenizers("qwen2")
    data = tokenized(tok, tmp_path, {"messages": [USER, {"role": "assistant", "content": "[b]Hello.[/b]"}]})
    [item] = data.items
    text = show_example(tok, item)
    assert text.endswith("<|im_start|>assistant\n⟦[b]Hello.[/b]<|im_end|>⟧\n")
    assert text.replace("⟦", "").replace("⟧", "") == tok.decode(item.ids, skip_special_tokens=False)
    console = Console(record=True, width=200)
    console.print(show_example(tok, item, markup=True), soft_wrap=True, end="")
    assert console.export_text() == tok.decode(item.ids, skip_special_tokens=False)
    console.print(data.summary)
    shown = console.export_text()
    assert "supervised tokens" in shown and f"{data.summary.supervised_tokens}" in shown
    trained = sum(item.labels_mask)
    assert str(data.summary).startswith(f"examples: 1\ntokens: {len(item.ids)}\nsupervised tokens: {trained} (")


def test_template_problems_are_reported_per_line(tmp_path, tiny_models):
    tok = Tokenizer.from_hf_folder(tiny_models("qwen2")[0])
    tok.chat_template = ("{% for m in messages %}{% if 'forbidden' in m.content %}"
                         "{{ raise_exception('no forbidden words') }}{% endif %}"
                         "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")
    good = {"messages": [USER, {"role": "assistant", "content": "ok"}]}
    bad = {"messages": [{"role": "user", "content": "forbidden"}, {"role": "assistant", "content": "ok"}]}
    with pytest.raises(DataError) as e:
        tokenized(tok, tmp_path, good, bad)
    assert e.value.problems == [f"{tmp_path / 'data.jsonl'}:2: messages: rejected by the chat template: "
                                "no forbidden words"]
    tok.chat_template = "{% for m in messages %}### {{ m.role }}: {{ m.content }}\n{% endfor %}"
    with pytest.raises(DataError, match="ChatML"):
        tokenized(tok, tmp_path, good)
