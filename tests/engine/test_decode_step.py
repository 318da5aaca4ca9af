"""The decode step (cache writes, rope at an offset, T=1 attention, compiled or eager) against full forwards."""
import warnings

import pytest
import torch

from qwenkit.engine.decode_step import DecodeStep
from qwenkit.engine.generator import Generator
from qwenkit.engine.kv_cache import allocate_kv_cache, grow_kv_cache
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model
from qwenkit.sampling_params import SamplingParams

IDS = torch.randint(0, 151000, (40,), generator=torch.Generator().manual_seed(3))


def decode_logits(model, ids: torch.Tensor, step: DecodeStep, prefill: int = 12, rows: int = 1) -> torch.Tensor:
    """Prefill in two chunks (the second attends past an offset), decode the rest one token at a time,
    growing the cache on the way; returns logits [rows, T - prefill + 1, vocab] for positions prefill-1..T-1."""
    cache = allocate_kv_cache(model.config, rows, prefill + 4, model.dtype, torch.device("cpu"))
    batch = ids[None].expand(rows, -1)
    with torch.inference_mode():
        half = prefill // 2
        model(batch[:, :half], torch.arange(half), cache, last_only=True)
        out = [model(batch[:, half:prefill], torch.arange(half, prefill), cache, last_only=True)[:, -1].float()]
        for position in range(prefill, ids.shape[0]):
            if position >= cache[0][0].shape[2]:  # grown late: the step before filled it (eager when compiled)
                cache = grow_kv_cache(cache, 2 * position)
            out.append(step(batch[:, position], position, cache))
    return torch.stack(out, dim=1)


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to fp32 rounding (a GEMV and a GEMM sum in different orders)."""
    torch.testing.assert_close(actual, expected, atol=1e-5 * expected.abs().max(), rtol=1e-5)


@pytest.mark.parametrize("arch", ["qwen2", "qwen3", "llama"])
def test_fp32_decode_steps_equal_full_forward(tiny_models, arch):
    model = load_model(load_checkpoint(tiny_models(arch)[0]))
    full = model.logits(IDS)[11:]
    steps = decode_logits(model, IDS, DecodeStep(model), rows=2)
    for row in steps:
        assert_close(row, full)


@pytest.fixture(scope="module")
def smooth_qwen2(tmp_path_factory):
    """Trained-scale weights (std 0.02): the wide test models amplify bf16 rounding chaotically."""
    from tests.conftest import build_tiny_model
    folder = tmp_path_factory.mktemp("smooth-qwen2")
    build_tiny_model("qwen2", folder, std=0.02)
    return load_checkpoint(folder)


@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_quantized_decode_steps_close_to_full_forward(smooth_qwen2, quant):
    model = load_model(smooth_qwen2, quant=quant)
    full = model.logits(IDS)[11:]
    steps = decode_logits(model, IDS, DecodeStep(model))[0]
    assert torch.nn.functional.cosine_similarity(steps, full, dim=-1).min() > 0.9999
    assert (steps - full).abs().max() < 0.02 * full.abs().max()


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # inductor's own
def test_compiled_step_equals_eager_and_compiles_once(tiny_models):
    model = load_model(load_checkpoint(tiny_models("qwen3")[0]))
    step = DecodeStep(model, compile=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "torch.compile of the decode step failed")  # not eager vs eager
        compiled = decode_logits(model, IDS[:28], step)
        with torch.compiler.set_stance("fail_on_recompile"):  # other positions and cache lengths reuse the graph
            again = decode_logits(model, IDS[:36], step, prefill=6)
    assert step.compiled is not None
    eager = DecodeStep(model)
    assert_close(compiled, decode_logits(model, IDS[:28], eager))
    assert_close(again, decode_logits(model, IDS[:36], eager, prefill=6))


def test_failed_compile_warns_once_and_decodes_eagerly(tiny_models):
    model = load_model(load_checkpoint(tiny_models("qwen3")[0]))
    step = DecodeStep(model)
    calls = []

    def broken(*args):
        calls.append(1)
        raise RuntimeError("no C++ compiler")
    step.compiled = broken
    eager = decode_logits(model, IDS[:16], DecodeStep(model))
    with pytest.warns(UserWarning, match="decoding eagerly: no C\\+\\+ compiler"):
        fallback = decode_logits(model, IDS[:16], step)
    assert len(calls) == 1 and step.compiled is None
    torch.testing.assert_close(fallback, eager, atol=0, rtol=0)


def test_generator_decodes_through_its_step(tiny_models):
    folder, _ = tiny_models("qwen2")
    ck = load_checkpoint(folder)
    model = load_model(ck)
    generator = Generator(model, ck.tokenizer, [], 128)
    params = SamplingParams(temperature=0, max_tokens=20, ignore_eos=True)
    tokens = [d.token_id for d in generator.stream(IDS[:8].tolist(), params)]
    for i, token in enumerate(tokens):  # each greedy choice is the argmax of a full forward over the text so far
        text = torch.cat([IDS[:8], torch.tensor(tokens[:i], dtype=torch.long)])
        assert int(model.logits(text)[-1].argmax()) == token
