from qwenkit.errors import InvalidRequestError


def check_prompt(prompt_ids: list[int], max_model_len: int, vocab_size: int) -> None:
    """Refuse, never truncate: an empty prompt, one that fills the context, or ids outside the vocabulary."""
    if not prompt_ids:
        raise InvalidRequestError("prompt", "is empty")
    if len(prompt_ids) >= max_model_len:
        raise InvalidRequestError("prompt", f"has {len(prompt_ids)} tokens but the context limit is "
                                  f"{max_model_len}; shorten it or raise --max-model-len")
    if max(prompt_ids) >= vocab_size or min(prompt_ids) < 0:
        raise InvalidRequestError("prompt", f"token ids must be in [0, {vocab_size})")
