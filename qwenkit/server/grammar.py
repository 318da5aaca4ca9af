"""Constrained decoding with xgrammar: a grammar becomes, at every step, the set of tokens the sampler may
pick (LLMEngine's per-sequence `constraint` hook). Used for response_format and for tool_choice
required / a named function."""
import json
from functools import cached_property

import torch
import xgrammar as xgr

from qwenkit.errors import InvalidRequestError


class GrammarConstraint:
    """One sequence's matcher. With `trigger`, tokens are free until that token (Qwen3's </think>) is sampled:
    the grammar applies to the answer, not to the reasoning."""

    def __init__(self, compiled: xgr.CompiledGrammar, vocab_size: int, trigger: int | None = None,
                 device: torch.device | None = None):
        self.matcher = xgr.GrammarMatcher(compiled)
        self.vocab_size, self.device = vocab_size, device or torch.device("cpu")
        self.trigger = trigger
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)

    def allowed(self, vocab_size: int) -> torch.Tensor | None:
        if self.trigger is not None:
            return None
        self.matcher.fill_next_token_bitmask(self.bitmask)
        scores = torch.zeros(1, vocab_size)
        xgr.apply_token_bitmask_inplace(scores, self.bitmask, vocab_size=vocab_size)
        return (scores[0] == 0).to(self.device)

    def accept(self, token: int) -> None:
        if self.trigger is not None:
            if token == self.trigger:
                self.trigger = None
            return
        if not self.matcher.is_terminated():
            self.matcher.accept_token(token)


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

    def factory(self, compiled: xgr.CompiledGrammar, trigger: int | None):
        return lambda: GrammarConstraint(compiled, self.vocab_size, trigger, self.device)

    def json(self, schema: dict | None, field: str, lead: str = "") -> xgr.CompiledGrammar:
        """Any JSON object (schema None) or one valid for `schema`, compact, after the literal `lead`."""
        try:
            grammar = xgr.Grammar.from_json_schema(json.dumps(schema or {"type": "object"}), any_whitespace=False)
        except Exception as e:  # noqa: BLE001 - xgrammar raises plain RuntimeErrors for bad schemas
            raise InvalidRequestError(field, f"cannot be enforced: {e}") from None
        return self.compiler.compile_grammar(xgr.Grammar.concat(_literal(lead), grammar) if lead else grammar)

    def tool_calls(self, tools: list[dict], lead: str = "") -> xgr.CompiledGrammar:
        """Exactly one `<tool_call>\\n{"name": N, "arguments": ARGS}\\n</tool_call>` for one of `tools`, ARGS
        following that tool's parameter schema; `lead` is literal text before it."""
        options = []
        for tool in tools:
            fn = tool["function"]
            head = f'{lead}<tool_call>\n{{"name": {json.dumps(fn["name"])}, "arguments": '
            try:
                args = xgr.Grammar.from_json_schema(json.dumps(fn.get("parameters") or {"type": "object"}),
                                                    any_whitespace=False)
            except Exception as e:  # noqa: BLE001
                raise InvalidRequestError("tools", f"parameters of {fn['name']!r} cannot be enforced: {e}") from None
            options.append(xgr.Grammar.concat(_literal(head), args, _literal("}\n</tool_call>")))
        grammar = options[0] if len(options) == 1 else xgr.Grammar.union(*options)
        return self.compiler.compile_grammar(grammar)


def _literal(text: str) -> xgr.Grammar:
    return xgr.Grammar.from_ebnf(f"root ::= {json.dumps(text)}")
