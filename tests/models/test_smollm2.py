"""The embedded SmolLM2-135M-Instruct GGUF against transformers loading the same file."""
import pytest
import torch

from qwenkit import LLM, SamplingParams

MESSAGES = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]


@pytest.fixture(scope="module")
def llm(smollm2_gguf):
    return LLM(str(smollm2_gguf), dtype="float32", quant="none")


@pytest.fixture(scope="module")
def reference(smollm2_gguf):
    import transformers as T
    model = T.AutoModelForCausalLM.from_pretrained(smollm2_gguf.parent, gguf_file=smollm2_gguf.name,
                                                   dtype=torch.float32).eval()
    return model


def test_greedy_chat_continuation_matches_transformers(llm, reference):
    ids = llm.chat_prompt_ids(MESSAGES)
    assert llm.tokenizer.decode(ids, skip_special_tokens=False).endswith("<|im_start|>assistant\n")
    ours = llm.generate(ids, SamplingParams(temperature=0, max_tokens=64, ignore_eos=True))[0].outputs[0]
    with torch.no_grad():
        prompt = torch.tensor([ids])  # an explicit mask: the prompt holds <|im_end|>, the file's pad id
        ref = reference.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=64,
                                 do_sample=False, eos_token_id=None, pad_token_id=2)[0, len(ids):].tolist()
    assert ours.token_ids == ref
    assert "robot" in ours.text.lower()


def test_logits_match_transformers(llm, reference):
    ids = torch.tensor(llm.chat_prompt_ids(MESSAGES))
    with torch.no_grad():
        expected = reference(ids[None]).logits[0]
    torch.testing.assert_close(llm.model.logits(ids), expected, atol=2e-3, rtol=1e-3)


def test_chat_answers_and_stops_on_im_end(llm):
    out = llm.chat([{"role": "user", "content": "What is the capital of France?"}],
                   SamplingParams(temperature=0, max_tokens=64))[0].outputs[0]
    assert "Paris" in out.text
    assert out.finish_reason == "stop" and out.token_ids[-1] == llm.tokenizer.token_to_id("<|im_end|>")
