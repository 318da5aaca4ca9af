"""The tuning benchmark's data: deterministic chat examples of varied length, packed into full rows that every
system trains on (same tokens, same supervised positions)."""
import json
import random
from pathlib import Path

TEXT = ("the driver asked for the quickest way to the harbour while rain fell on the old market square and "
        "the assistant checked the battery range the traffic on the bridge and the opening hours of the museum "
        "before suggesting a cafe with parking near the cathedral")
WORDS = TEXT.split()


def write_chat_data(path: Path, examples: int, seed: int = 0) -> Path:
    """Examples of 40-400 words: a user request and a longer assistant answer, as OpenAI chat JSONL."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for _ in range(examples):
            question = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(8, 60)))
            answer = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(30, 340)))
            messages = [{"role": "user", "content": question.capitalize() + "?"},
                        {"role": "assistant", "content": answer.capitalize() + "."}]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def full_rows(tokenizer, data: Path, seq_len: int, rows: int) -> list:
    """`rows` PackedRows of exactly `seq_len` tokens: the examples laid end to end in file order and cut at
    row boundaries (an example cut in two continues in the next row as a fresh segment)."""
    from qwenkit.tune.packing import PackedRow
    from qwenkit.tune.records import load_examples
    from qwenkit.tune.render import tokenize_examples
    items = tokenize_examples(tokenizer, load_examples(data), max_length=100_000).items
    out, row = [], PackedRow([], [], [], [], [])
    for n, item in enumerate(items):
        ids, labels = item.ids, item.labels()
        while ids:
            take = min(len(ids), seq_len - len(row))
            segment = len(row.examples)
            row.input_ids += ids[:take]
            row.labels += labels[:take - 1] + [-100]
            row.positions += list(range(take))
            row.segments += [segment] * take
            row.examples.append(n)
            ids, labels = ids[take:], labels[take:]
            if len(row) == seq_len:
                out.append(row)
                if len(out) == rows:
                    return out
                row = PackedRow([], [], [], [], [])
    raise ValueError(f"only {len(out)} full rows of {seq_len} tokens in {data}; write more examples")
