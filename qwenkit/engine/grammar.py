"""Constrained decoding with xgrammar: a grammar becomes, at every step, the set of tokens the sampler may
pick (LLMEngine's per-sequence `constraint` hook). The server uses it for response_format, for tool_choice
required / a named function, and for parallel_tool_calls=false; Python callers pass `Grammars.factory(...)`
to LLM.generate / LLM.chat as `constraint`.

A grammar is an xgrammar structural tag. When the model thinks first, it begins with the reasoning block:
free text (at most `budget` tokens, then `</think>` is the only way on), so the constraint shapes the
answer and never the reasoning, and the answer always gets its turn."""
import json
from dataclasses import dataclass
from functools import cached_property

import torch
import xgrammar as xgr

from qwenkit.errors import InvalidRequestError

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CALL_OPEN, CALL_END = "<tool_call>", "}\n</tool_call>"
BITS = torch.arange(32, dtype=torch.int32)


@dataclass(slots=True)
class Thinking:
    opened: bool = False          # the prompt already wrote <think>
    budget: int | None = None     # reasoning tokens before </think> is forced; None: no limit


class GrammarConstraint:
    """One sequence's matcher."""

    def __init__(self, compiled: xgr.CompiledGrammar, vocab_size: int, device: torch.device | None = None,
                 tokenizer=None):
        self.matcher = xgr.GrammarMatcher(compiled)
        self.tokenizer = tokenizer   # cuts forced text the way the model was trained to read it (see forced)
        self.device = device or torch.device("cpu")
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)

    def allowed(self, vocab_size: int) -> torch.Tensor:
        self.matcher.fill_next_token_bitmask(self.bitmask)
        bits = (self.bitmask[0].unsqueeze(1) >> BITS) & 1      # bit j of word i is token 32 * i + j
        return bits.flatten()[:vocab_size].bool().to(self.device)

    def accept(self, token: int) -> None:
        if not self.matcher.is_terminated():
            self.matcher.accept_token(token)

    def forced(self) -> list[int]:
        """The tokens the grammar leaves no choice about from here (jump-forward decoding): `", "arguments": {"`
        after a tool's name, a key that is the only one left.

        xgrammar picks how much of the forced text to take (it keeps back a last piece that a longer token could
        extend, so the model still writes that boundary) and cuts it greedily into the longest tokens. The model
        was trained on its tokenizer's cut (`c` `elsius`, not `cels` `ius`), so that span is re-encoded with the
        tokenizer, kept only when it decodes to the same text."""
        if self.matcher.is_terminated():
            return []
        tokens = self.matcher.find_jump_forward_tokens()
        if not tokens or self.tokenizer is None:
            return tokens
        text = self.tokenizer.decode(tokens, skip_special_tokens=False)
        canonical = self.tokenizer.encode(text)
        return canonical if self.tokenizer.decode(canonical, skip_special_tokens=False) == text else tokens


class Grammars:
    """Compiles grammars for one model's tokenizer (lazily: building the vocabulary table takes a moment)."""

    def __init__(self, tokenizer, vocab_size: int, stop_ids: list[int], device: torch.device):
        self.tokenizer, self.vocab_size, self.stop_ids, self.device = tokenizer, vocab_size, stop_ids, device

    @cached_property
    def compiler(self) -> xgr.GrammarCompiler:
        tok = self.tokenizer
        special = set(tok.special_tokens.values())
        vocab = [("" if i in special else (tok.id_to_token(i) or "")) for i in range(len(tok))]
        vocab += [""] * (self.vocab_size - len(vocab))
        byte_level = any(t.startswith("Ġ") for t in vocab[:5000])
        info = xgr.TokenizerInfo(vocab, xgr.VocabType.BYTE_LEVEL if byte_level else xgr.VocabType.RAW,
                                 vocab_size=self.vocab_size, stop_token_ids=self.stop_ids)
        return xgr.GrammarCompiler(info, max_threads=2)

    def compile(self, answer: dict, thinking: Thinking | None = None) -> xgr.CompiledGrammar:
        """`answer`: a structural-tag format for the reply (json_format, tool_calls_format), after the
        reasoning block when `thinking` is given."""
        parts = [think_format(thinking), answer] if thinking else [answer]
        tag = {"type": "structural_tag", "format": {"type": "sequence", "elements": parts}}
        return self.compiler.compile_structural_tag(json.dumps(tag))

    def factory(self, compiled: xgr.CompiledGrammar):
        return lambda: GrammarConstraint(compiled, self.vocab_size, self.device, self.tokenizer)


def json_format(schema: dict | None, field: str) -> dict:
    """Any JSON object (schema None) or one valid for `schema`, with the spacing of Python's json.dumps
    (`", "`, `": "`, as Qwen writes tool arguments)."""
    try:
        grammar = xgr.Grammar.from_json_schema(json.dumps(schema or {"type": "object"}), any_whitespace=False)
    except Exception as e:  # noqa: BLE001 - xgrammar raises plain RuntimeErrors for bad schemas
        raise InvalidRequestError(field, f"cannot be enforced: {e}") from None
    return {"type": "grammar", "grammar": str(grammar)}


def tool_calls_format(tools: list[dict], required: bool, parallel: bool) -> dict:
    """Qwen's `<tool_call>\\n{"name": N, "arguments": ARGS}\\n</tool_call>` for the `tools`, ARGS valid for
    that tool's parameters. required: only calls, at least one (one per line); otherwise text with calls
    in it. parallel False: one call at most, and the reply ends with it."""
    tags = []
    for i, tool in enumerate(tools):
        fn = tool["function"]
        head = f'{CALL_OPEN}\n{{"name": {json.dumps(fn["name"])}, "arguments": '
        args = json_format(fn.get("parameters"), f"tools[{i}].function.parameters")
        tags.append({"type": "tag", "begin": head, "content": args, "end": CALL_END})
    if required:
        return {"type": "tags_with_separator", "tags": tags, "separator": "\n", "at_least_one": True,
                "stop_after_first": not parallel}
    return {"type": "triggered_tags", "triggers": [CALL_OPEN], "tags": tags, "stop_after_first": not parallel}


def think_format(thinking: Thinking) -> dict:
    """`<think>` (unless the prompt opened it), free text without think tags, `</think>`, a blank line."""
    text = {"type": "any_text", "excludes": [THINK_OPEN, THINK_CLOSE], "max_tokens": thinking.budget}
    block = {"type": "tag", "begin": "" if thinking.opened else THINK_OPEN, "content": text, "end": THINK_CLOSE}
    return {"type": "sequence", "elements": [block, {"type": "const_string", "value": "\n\n"}]}
