"""Read a Hugging Face tokenizer: tokenizer.json, tokenizer_config.json and the chat template files."""
import json
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as Backend

from qwenkit.errors import ModelLoadError
from qwenkit.tokenizer.parts import TokenizerParts

REDOWNLOAD = "re-download the checkpoint, or save it again with transformers' save_pretrained"


def read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(str(file), f"is not valid JSON: {e}", REDOWNLOAD) from e


def read_backend(file: Path) -> Backend:
    if not file.is_file():
        raise ModelLoadError(str(file), "is missing",
                             "qwenkit needs the fast-tokenizer file; " + REDOWNLOAD)
    try:
        return Backend.from_file(str(file))
    except Exception as e:
        raise ModelLoadError(str(file), f"could not be parsed as a tokenizer.json ({e})",
                             "if the file is complete, upgrade tokenizers (pip install -U tokenizers); "
                             "otherwise " + REDOWNLOAD) from e


def token_name(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken dict."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def read_templates(folder: Path, config: dict) -> tuple[str | None, str, dict[str, str]]:
    """(default template, where it came from, named templates); the .jinja file wins, as in transformers 5."""
    config_file = folder / "tokenizer_config.json"
    named: dict[str, str] = {}
    default, source = None, ""
    templates = config.get("chat_template")
    if isinstance(templates, list):
        named = {t["name"]: t["template"] for t in templates if isinstance(t, dict) and "name" in t}
        default, source = named.pop("default", None), f"{config_file} (chat_template)"
    elif isinstance(templates, str):
        default, source = templates, f"{config_file} (chat_template)"
    if (file := folder / "chat_template.json").is_file():
        data = read_json(file)
        if not isinstance(data, dict) or not isinstance(data.get("chat_template"), str):
            raise ModelLoadError(str(file), 'should hold {"chat_template": "..."}', REDOWNLOAD)
        default, source = data["chat_template"], f"{file} (chat_template)"
    if (file := folder / "chat_template.jinja").is_file():
        default, source = file.read_text(encoding="utf-8"), str(file)
    extra = folder / "additional_chat_templates"
    if extra.is_dir():
        named.update({f.stem: f.read_text(encoding="utf-8") for f in sorted(extra.glob("*.jinja"))})
    return default, source, named


def generation_eos_ids(folder: Path) -> list[int]:
    file = folder / "generation_config.json"
    if not file.is_file():
        return []
    config = read_json(file)
    eos = config.get("eos_token_id") if isinstance(config, dict) else None
    return [eos] if isinstance(eos, int) else [i for i in eos or [] if isinstance(i, int)]


def read_add_bos(config: dict, backend: Backend, bos: str | None) -> bool:
    if isinstance(config.get("add_bos_token"), bool):
        return config["add_bos_token"]
    bos_id = backend.token_to_id(bos) if bos else None
    return bos_id is not None and backend.encode("a", add_special_tokens=True).ids[:1] == [bos_id]


def read_hf_folder(folder: Path) -> TokenizerParts:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(str(folder), "is not a folder",
                             "pass the checkpoint folder that holds tokenizer.json")
    backend = read_backend(folder / "tokenizer.json")
    config_file = folder / "tokenizer_config.json"
    config = read_json(config_file) if config_file.is_file() else {}
    if not isinstance(config, dict):
        raise ModelLoadError(str(config_file), "should hold a JSON object", REDOWNLOAD)
    template, template_source, named = read_templates(folder, config)
    bos, eos = token_name(config.get("bos_token")), token_name(config.get("eos_token"))
    return TokenizerParts(
        backend=backend, source=str(folder / "tokenizer.json"), chat_template=template,
        template_source=template_source, named_templates=named, bos_token=bos,
        eos_tokens=[eos] if eos else [], extra_eos_ids=generation_eos_ids(folder),
        add_bos=read_add_bos(config, backend, bos),
    )
