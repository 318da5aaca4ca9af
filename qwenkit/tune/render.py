"""Chat examples as token ids plus a loss mask, rendered through the model's own chat template.

Each conversation is rendered to text once; assistant turns are found by their ChatML markers
(`<|im_start|>assistant\\n` ... `<|im_end|>`) and the pieces are encoded apart, so the trained tokens are exactly
the replies with their closing `<|im_end|>`. The joined ids must equal `Tokenizer.encode_chat`'s. An empty Qwen3
think block stays on the prompt side (as at inference with enable_thinking=False); a non-empty one is trained on
only with `train_on_reasoning`, else it is context the reply is trained after."""
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby

from rich.markup import escape

from qwenkit.errors import InvalidRequestError
from qwenkit.tokenizer import Tokenizer
from qwenkit.tokenizer.placeholders import Placeholders, literal_pattern
from qwenkit.tune.data_summary import DataSummary
from qwenkit.tune.problems import DataError, RecordError
from qwenkit.tune.records import Example

START, END = "<|im_start|>", "<|im_end|>"
HEADER = START + "assistant\n"
THINK, END_THINK = "<think>", "</think>"
OVERLONG = ("drop", "truncate", "error")


@dataclass(slots=True)
class TokenizedExample:
    ids: list[int]
    labels_mask: list[bool]   # True where the loss trains the model to produce this token
    line: int
    source: str = ""
    reasoning_turns: int = 0  # assistant turns whose thinking is trained on

    def labels(self) -> list[int]:
        """Next-token targets, already shifted: labels[i] is what position i predicts, -100 where nothing."""
        return [t if m else -100 for t, m in zip(self.ids[1:], self.labels_mask[1:])] + [-100]


@dataclass(slots=True)
class TokenizedData:
    items: list[TokenizedExample]
    summary: DataSummary


def tokenize_examples(tokenizer: Tokenizer, examples: Sequence[Example], max_length: int, overlong: str = "drop",
                      train_on_reasoning: bool = False, template_kwargs: dict | None = None) -> TokenizedData:
    """Every example tokenized and masked; examples over max_length are dropped, truncated (their start kept)
    or, with overlong="error", reported. Problems are collected and raised as one DataError."""
    if overlong not in OVERLONG:
        raise InvalidRequestError("overlong", f"unknown choice {overlong!r}; use drop, truncate or error")
    if max_length < 2:
        raise InvalidRequestError("max_length", "should be at least 2 tokens")
    check_chatml(tokenizer)
    items, problems, long, truncated = [], [], [], 0
    for example in examples:
        place = f"{example.source}:{example.line}"
        try:
            item = tokenize_example(tokenizer, example, train_on_reasoning, template_kwargs)
        except (RecordError, InvalidRequestError) as e:
            problems.append(f"{place}: {e}")
            continue
        if not any(item.labels_mask):
            problems.append(f"{place}: nothing to learn: the chat template left out every assistant reply")
        elif len(item.ids) <= max_length:
            items.append(item)
        else:
            long.append(place)
            if overlong == "error":
                problems.append(f"{place}: {len(item.ids)} tokens, longer than max_length {max_length}")
            elif overlong == "truncate" and any(item.labels_mask[:max_length]):
                items.append(truncate(item, max_length))
                truncated += 1
    if problems:
        raise DataError(problems)
    if not items:
        raise DataError([f"all {len(long)} examples are longer than max_length {max_length}"] if long else
                        ["no examples to train on"], "raise max_length or pass overlong='truncate'")
    summary = DataSummary(
        examples=len(items), tokens=sum(len(i.ids) for i in items),
        supervised_tokens=sum(sum(i.labels_mask) for i in items), longest=max(len(i.ids) for i in items),
        max_length=max_length, overlong=len(long), overlong_action=overlong, dropped=len(long) - truncated,
        truncated=truncated, overlong_places=long[:5], reasoning_turns=sum(i.reasoning_turns for i in items),
        formats={e.source: e.fmt for e in examples})
    return TokenizedData(items, summary)


def truncate(item: TokenizedExample, max_length: int) -> TokenizedExample:
    return TokenizedExample(item.ids[:max_length], item.labels_mask[:max_length], item.line, item.source,
                            item.reasoning_turns)


def check_chatml(tokenizer: Tokenizer) -> None:
    text = tokenizer.render_chat([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}],
                                 add_generation_prompt=False)
    spans = assistant_spans(text) if HEADER in text else []
    marked = START in tokenizer.special_tokens and END in tokenizer.special_tokens
    if not marked or len(spans) != 1 or not text[:spans[0][2]].endswith("ok" + END):
        raise DataError([f"{tokenizer.source}: the chat template does not write assistant turns as "
                         "`<|im_start|>assistant` ... `<|im_end|>`"], "fine-tuning supports ChatML-style templates")


def tokenize_example(tokenizer: Tokenizer, example: Example, train_on_reasoning: bool = False,
                     template_kwargs: dict | None = None) -> TokenizedExample:
    kwargs = template_kwargs or {}
    hidden = Placeholders.for_inputs(tokenizer.special_tokens, example.messages, example.tools, kwargs,
                                     tokenizer.chat_template or "")
    text = tokenizer.render_chat(hidden.hide(example.messages), hidden.hide(example.tools),
                                 add_generation_prompt=False, **hidden.hide(kwargs))
    turns = [m for m in example.messages if m["role"] == "assistant"]
    spans = assistant_spans(text)
    if len(spans) != len(turns):
        raise RecordError(f"the chat template wrote {len(spans)} of the {len(turns)} assistant turns")
    ids, mask, at, reasoning = [], [], 0, 0
    for (head, start, end), turn in zip(spans, turns):
        if not turn.get("weight", 1):
            continue
        start, thinks = reply_start(text, start, end, train_on_reasoning)
        prompt = encode_text(tokenizer, text[at:head], hidden)
        turn_ids = encode_text(tokenizer, text[head:end], hidden)
        trained_from = reply_token(tokenizer, turn_ids, encode_text(tokenizer, text[head:start], hidden),
                                   hidden.show(text[head:start]))
        ids += prompt + turn_ids
        mask += [False] * (len(prompt) + trained_from) + [True] * (len(turn_ids) - trained_from)
        at, reasoning = end, reasoning + thinks
    rest = encode_text(tokenizer, text[at:], hidden)
    ids, mask = ids + rest, mask + [False] * len(rest)
    if tokenizer.add_bos and tokenizer.bos_token_id is not None and ids[:1] != [tokenizer.bos_token_id]:
        ids, mask = [tokenizer.bos_token_id, *ids], [False, *mask]
    if ids != tokenizer.encode_chat(example.messages, example.tools, add_generation_prompt=False, **kwargs):
        raise RecordError("its tokens differ from the chat template's encoding (a qwenkit bug: please report it)")
    return TokenizedExample(ids, mask, example.line, example.source, reasoning)


def assistant_spans(text: str) -> list[tuple[int, int, int]]:
    """(just past `<|im_start|>`, where the reply starts, just past its `<|im_end|>`) for each assistant turn.
    Pieces cut there are encoded as the whole text is: each cut touches a special token."""
    spans, at = [], 0
    while (head := text.find(HEADER, at)) >= 0:
        start = head + len(HEADER)
        end = text.find(END, start)
        if end < 0:
            raise RecordError("an assistant turn has no closing <|im_end|> in the rendered chat")
        spans.append((head + len(START), start, end + len(END)))
        at = end
    return spans


def reply_start(text: str, start: int, end: int, train_on_reasoning: bool) -> tuple[int, bool]:
    """Where the trained part of a reply begins, and whether it includes thinking."""
    close = text.find(END_THINK, start, end) if text.startswith(THINK, start) else -1
    if close < 0:
        return start, False
    if train_on_reasoning and text[start + len(THINK):close].strip():
        return start, True
    start = close + len(END_THINK)
    while start < end and text[start] == "\n":
        start += 1
    return start, False


def reply_token(tokenizer: Tokenizer, turn_ids: list[int], header_ids: list[int], header: str) -> int:
    """Index in `turn_ids` of the first token of the reply. A reply starting with whitespace can share its
    first token with the header's newline; that token stays on the prompt side."""
    if turn_ids[:len(header_ids)] == header_ids:
        return len(header_ids)
    first = next(i for i, (a, b) in enumerate(zip([*header_ids, -1], turn_ids)) if a != b)
    before = tokenizer.decode(turn_ids[:first], skip_special_tokens=False)
    through = tokenizer.decode(turn_ids[:first + 1], skip_special_tokens=False)
    if header.startswith(before) and through.startswith(header) and len(through) > len(header):
        return first + 1
    raise RecordError("an assistant reply does not start on a token boundary; strip the whitespace it starts with")


def encode_text(tokenizer: Tokenizer, text: str, hidden: Placeholders) -> list[int]:
    """As encode_chat encodes rendered text: the template's special tokens as control ids, the rest (with the
    inputs' special-token text put back) as plain text."""
    pattern = special_pattern(tuple(tokenizer.special_tokens))
    ids, at = [], 0
    for match in pattern.finditer(text) if pattern else ():
        ids += tokenizer.encode(hidden.show(text[at:match.start()]))
        ids.append(tokenizer.special_tokens[match.group()])
        at = match.end()
    return ids + tokenizer.encode(hidden.show(text[at:]))


@lru_cache(maxsize=8)
def special_pattern(tokens: tuple[str, ...]):
    return literal_pattern(tokens)


def show_example(tokenizer: Tokenizer, item: TokenizedExample, markup: bool = False) -> str:
    """The example's text with trained spans in ⟦ ⟧, or with markup=True as rich markup (trained spans bold
    green, the rest dim)."""
    out = []
    for trained, run in groupby(zip(item.ids, item.labels_mask), key=lambda pair: pair[1]):
        text = tokenizer.decode([i for i, _ in run], skip_special_tokens=False)
        if markup:
            out.append(f"[bold green]{escape(text)}[/]" if trained else f"[dim]{escape(text)}[/]")
        else:
            out.append(f"⟦{text}⟧" if trained else text)
    return "".join(out)
