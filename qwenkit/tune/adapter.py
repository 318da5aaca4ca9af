"""Put LoRA layers into a CausalLM, read them out as a PEFT adapter, load one back, or fold it into the weights.

Module names are PEFT's (Hugging Face's): `model.layers.0.self_attn.q_proj`. A model loaded with quantization
has fused `qkv_proj` / `gate_up_proj` linears; their parts keep the unfused names.
"""
from collections.abc import Callable

import torch
from torch import nn

from qwenkit.errors import InvalidRequestError, ModelLoadError
from qwenkit.layers.quant import Int4Linear, Int8Linear
from qwenkit.models.decoder import CausalLM
from qwenkit.models.fuse import FUSED
from qwenkit.tune.lora import LoraConfig, LoRALinear, Part
from qwenkit.tune.peft_format import AdapterFiles

BASES = (nn.Linear, Int8Linear, Int4Linear)
Plan = dict[str, tuple[nn.Module, str, list[Part]]]  # wrapped module name -> (parent, attribute, parts)


def apply_lora(model: CausalLM, config: LoraConfig) -> list[str]:
    """Freeze every weight, wrap the target linears in LoRALinear; returns the PEFT module names adapted."""
    targets = set(config.target_modules)
    plan = _plan(model, lambda name: name in targets or name.rsplit(".", 1)[-1] in targets)
    if not plan:
        raise InvalidRequestError("target_modules", f"none of {sorted(targets)} names a linear layer of this "
                                  f"model; choose from {', '.join(sorted(_linear_kinds(model)))}")
    model.requires_grad_(False)
    return _wrap(plan, config)


def load_lora(model: CausalLM, adapter: AdapterFiles, source: str = "adapter") -> list[str]:
    """Wrap the adapter's modules and copy its weights in; nothing changes if a module or shape is wrong."""
    plan = _plan(model, lambda name: name in adapter.weights)
    found = {p.name for _, _, parts in plan.values() for p in parts}
    for name, (a, _) in adapter.weights.items():
        if name not in found and ".experts." in name:
            raise ModelLoadError(source, f"the adapter changes the MoE expert {name!r}",
                                 "qwenkit applies adapters to experts only by merging: use `qwenkit merge`")
        if name not in found:
            raise ModelLoadError(source, f"the adapter changes {name!r}, which this model does not have",
                                 "the adapter was trained for a different model; use it with its base model")
        if a.shape[0] != adapter.r:
            raise ModelLoadError(source, f"{name}: lora_A has rank {a.shape[0]}, the config says r={adapter.r}",
                                 "the adapter's files do not belong together")
    for _, (parent, attr, parts) in plan.items():
        base = getattr(parent, attr)
        for part in parts:
            a, b = adapter.weights[part.name]
            want_a, want_b = (adapter.r, base.in_features), (part.stop - part.start, adapter.r)
            if tuple(a.shape) != want_a or tuple(b.shape) != want_b:
                raise ModelLoadError(source, f"{part.name}: the adapter has A {list(a.shape)} and B {list(b.shape)}"
                                     f" but this model needs A {list(want_a)} and B {list(want_b)}",
                                     "the adapter was trained for a different model size; use its base model")
    config = LoraConfig(r=adapter.r, alpha=adapter.alpha, dropout=adapter.dropout, use_rslora=adapter.use_rslora)
    model.requires_grad_(False)
    names = _wrap(plan, config)
    with torch.no_grad():
        for module in lora_modules(model).values():
            for i, part in enumerate(module.parts):
                a, b = adapter.weights[part.name]
                module.lora_A[i * module.r:(i + 1) * module.r].copy_(a)
                module.lora_B[i].copy_(b)
    return names


def lora_state(model: CausalLM, base_model: str | None = None) -> AdapterFiles:
    """The model's LoRA weights as a PEFT adapter (for write_adapter); copies on the CPU in float32."""
    modules = lora_modules(model)
    if not modules:
        raise InvalidRequestError("model", "has no LoRA layers; call apply_lora or load_lora first")
    first = next(iter(modules.values()))
    adapter = AdapterFiles(r=first.r, alpha=first.alpha, target_modules=[], base_model=base_model,
                           dropout=_dropout(first), use_rslora=first.use_rslora)
    for module in modules.values():
        for i, part in enumerate(module.parts):
            a, b = module.pair(i)
            adapter.weights[part.name] = (a.detach().float().cpu().clone(), b.detach().float().cpu().clone())
    adapter.target_modules = sorted({name.rsplit(".", 1)[-1] for name in adapter.weights})
    return adapter


def merge_lora(model: CausalLM) -> list[str]:
    """Fold every LoRA update into its float base weight and unwrap; returns the PEFT module names merged."""
    modules = lora_modules(model)
    for name, module in modules.items():
        if not isinstance(module.base, nn.Linear):
            raise InvalidRequestError("model", f"{name} is quantized ({type(module.base).__name__}); a LoRA "
                                      "update cannot be folded into it. Merge into the checkpoint instead "
                                      "(qwenkit merge), or load the model with quant='none'")
    merged = []
    for name, module in modules.items():
        base = module.base
        weight = base.weight.detach().float() + module.delta().to(base.weight.device)
        base.weight = nn.Parameter(weight.to(base.weight.dtype), requires_grad=False)  # a new tensor: unties
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attr, base)
        merged += [p.name for p in module.parts]
    return merged


def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def _plan(model: CausalLM, wanted: Callable[[str], bool]) -> Plan:
    if lora_modules(model):
        raise InvalidRequestError("model", "already has LoRA layers; merge_lora them or load a fresh model")
    plan = {}
    for name, module in model.named_modules():
        if not isinstance(module, BASES) or ".experts." in name or name == "lm_head.packed":
            continue
        prefix, _, attr = name.rpartition(".")
        parent = model.get_submodule(prefix) if prefix else model
        parts = [p for p in _parts(parent, attr, module, prefix) if wanted(p.name)]
        if parts:
            plan[name] = (parent, attr, parts)
    return plan


def _parts(parent: nn.Module, attr: str, module: nn.Module, prefix: str) -> list[Part]:
    """The PEFT modules a linear holds: itself, or q/k/v (gate/up) rows of a fused one."""
    join = f"{prefix}." if prefix else ""
    if attr not in FUSED:
        return [Part(join + attr, 0, module.out_features)]
    if attr == "qkv_proj":
        q, kv = parent.num_heads * parent.head_dim, parent.num_kv_heads * parent.head_dim
        sizes = [q, kv, kv]
    else:
        sizes = [module.out_features // 2] * 2
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [Part(join + n, s, s + size) for n, s, size in zip(FUSED[attr], starts, sizes)]


def _wrap(plan: Plan, config: LoraConfig) -> list[str]:
    names = []
    for parent, attr, parts in plan.values():
        module = LoRALinear(getattr(parent, attr), parts, config).train(parent.training)
        setattr(parent, attr, module)
        names += [p.name for p in parts]
    return names


def _linear_kinds(model: nn.Module) -> set[str]:
    kinds = set()
    for name, module in model.named_modules():
        if isinstance(module, BASES) and ".experts." not in name and name != "lm_head.packed":
            attr = name.rsplit(".", 1)[-1]
            kinds.update(FUSED.get(attr, (attr,)))
    return kinds


def _dropout(module: LoRALinear) -> float:
    return getattr(module.dropout, "p", 0.0)
