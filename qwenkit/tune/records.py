"""Training examples read from JSONL files: OpenAI chat records (`messages`, optional `tools`), or Alpaca and
ShareGPT records converted to them. The layout is detected per file unless `fmt` names it. Every problem in
every file is collected and raised as one DataError listing `file:line: problem`."""
import json
from dataclasses import dataclass
from pathlib import Path

from qwenkit.errors import InvalidRequestError
from qwenkit.tune.convert import FORMATS, alpaca_chat, detect_format, sharegpt_chat
from qwenkit.tune.problems import DataError, RecordError
from qwenkit.tune.validate import check_chat

LAYOUTS = "a `messages` list (OpenAI chat), `conversations` (ShareGPT) or `instruction` and `output` (Alpaca)"


@dataclass(slots=True)
class Example:
    messages: list[dict]        # OpenAI chat messages, checked and normalised
    tools: list[dict] | None
    line: int                   # 1-based line in `source`
    source: str                 # the file it came from
    fmt: str = "openai"         # the layout it was written in


def load_examples(path: str | Path, fmt: str = "auto") -> list[Example]:
    """Examples from one JSONL file, or from every *.jsonl file in a folder."""
    if fmt not in ("auto", *FORMATS):
        raise InvalidRequestError("fmt", f"unknown data format {fmt!r}; choose auto, {', '.join(FORMATS)}")
    files = data_files(Path(path))
    examples, problems = [], []
    for file in files:
        examples += read_file(file, fmt, problems)
    if problems:
        raise DataError(problems)
    if not examples:
        raise DataError([f"{path}: no examples (empty file)"], "write one JSON record per line")
    return examples


def data_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise DataError([f"{path}: no *.jsonl files in this folder"], "pass a .jsonl file or a folder of them")
        return files
    if not path.is_file():
        raise DataError([f"{path}: no such file or folder"], "check the path")
    return [path]


def read_file(path: Path, fmt: str, problems: list[str]) -> list[Example]:
    examples, detected = [], None if fmt == "auto" else fmt
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                record = parse_line(raw, n)
                detected = detected or detect_format(record)
                if detected is None:
                    raise RecordError(f"unknown record layout: expected {LAYOUTS}")
                example, found = to_example(record, detected, n, str(path))
            except RecordError as e:
                problems.append(f"{path}:{n}: {e}")
                continue
            problems += [f"{path}:{n}: {p}" for p in found]
            if not found:
                examples.append(example)
    return examples


def parse_line(raw: bytes, n: int) -> dict:
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RecordError("not UTF-8 text") from None
    except ValueError as e:
        hint = "; the file looks like one JSON array: write one JSON object per line" if n == 1 and \
            raw.lstrip().startswith(b"[") else ""
        raise RecordError(f"malformed JSON: {getattr(e, 'msg', e)} at column {getattr(e, 'colno', '?')}{hint}") \
            from None
    if not isinstance(record, dict):
        kind = "an array" if isinstance(record, list) else type(record).__name__
        raise RecordError(f"expected a JSON object per line, got {kind}")
    return record


def to_example(record: dict, fmt: str, n: int, source: str) -> tuple[Example, list[str]]:
    if fmt == "openai":
        if "messages" not in record:
            raise RecordError("no `messages` list (this file's records are OpenAI chat; pass fmt= to override)")
        messages, tools = record["messages"], record.get("tools")
    elif fmt == "alpaca":
        messages, tools = alpaca_chat(record)
    else:
        messages, tools = sharegpt_chat(record)
    messages, tools, problems = check_chat(messages, tools)
    return Example(messages, tools, n, source, fmt), problems
