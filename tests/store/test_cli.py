"""The store commands end to end through typer, as a user types them."""
import json
import os

import pytest
import typer
from typer.testing import CliRunner

from qwenkit.cli import store as store_cli
from qwenkit.store import hardware
from tests.store import tiny

runner = CliRunner()


@pytest.fixture
def app():
    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    store_cli.register(app)
    return app


def run(app, *args):
    result = runner.invoke(app, list(args))
    result.flat_out = " ".join(result.stdout.split())
    result.flat_err = " ".join(result.stderr.split())
    return result


def test_registers_the_store_commands(app):
    assert set(typer.main.get_command(app).commands) == {
        "pull", "import", "create", "list", "rm", "verify", "prune", "doctor"}


def test_round_trip(app, store, tmp_path, hf_files):
    folder = tiny.write_folder(tmp_path / "m", hf_files)
    adapter = tiny.write_adapter(tmp_path / "lora")
    r = run(app, "import", str(folder), "--name", "tiny")
    assert r.exit_code == 0 and "imported tiny:latest" in r.flat_out
    r = run(app, "create", "pirate", "--from", "tiny", "--adapter", str(adapter), "--system", "Arr.",
            "--param", "temperature=0.3", "--param", "stop=END")
    assert r.exit_code == 0, r.stderr
    assert "created pirate:latest from tiny:latest" in r.flat_out and "temperature=0.3" in r.flat_out
    r = run(app, "list")
    assert r.exit_code == 0 and "tiny:latest" in r.stdout and "pirate:latest" in r.stdout
    assert "hf +lora" in r.stdout and "smollm2:135m" in r.stdout
    assert run(app, "verify").exit_code == 0

    weights = store.blob(json.loads(store.manifest(store_name("tiny")).read_text())["files"][-1]["sha256"])
    os.chmod(weights, 0o644)
    weights.write_bytes(b"x" + weights.read_bytes()[1:])
    r = run(app, "verify", "tiny")
    assert r.exit_code == 1 and "corrupt" in r.stdout and "error:" in r.flat_err

    r = run(app, "rm", "tiny", "pirate")
    assert r.exit_code == 0 and "deleted tiny:latest" in r.stdout and "deleted pirate:latest" in r.stdout
    r = run(app, "prune")
    assert r.exit_code == 0 and "freed" in r.stdout


def store_name(ref):
    from qwenkit.store.names import parse_name
    return parse_name(ref)


@pytest.mark.parametrize("args, message", [
    (["rm", "../x"], "invalid model name"),
    (["rm", "nope"], "not in the store"),
    (["import", "/nonexistent/x.gguf", "--name", "x"], "no such file"),
    (["create", "x", "--from", "missing:v1"], "qwenkit list"),
    (["create", "x", "--from", "smollm2", "--param", "bogus=1"], "unknown key"),
    (["pull", "qwen9:1b"], "not in the catalog"),
    (["verify", "nope"], "not in the store"),
])
def test_errors_are_one_red_line_without_traceback(app, store, args, message):
    r = run(app, *args)
    assert r.exit_code == 1
    assert r.flat_err.startswith("error:") and message in r.flat_err
    assert "Traceback" not in r.stderr + r.stdout


def test_pull_with_progress(app, hub, store):
    r = run(app, "pull", "hf:org/tiny-qwen", "--name", "tiny:v1")
    assert r.exit_code == 0, r.stderr
    assert "pulled tiny:v1: 7 files" in r.flat_out
    r = run(app, "list")
    assert "tiny:v1" in r.stdout


def test_empty_list_suggests_a_pull(app, store, monkeypatch):
    from qwenkit.store import listing
    monkeypatch.setattr(listing, "builtin_manifest", lambda: None)
    r = run(app, "list")
    assert r.exit_code == 0 and "qwenkit pull" in r.stdout


def test_doctor(app, store, monkeypatch):
    monkeypatch.setattr(hardware, "measure_bandwidth", lambda device="cpu", **kw: 20e9)
    from qwenkit.bench import machine
    monkeypatch.setattr(machine, "decode_bandwidth_gbs", lambda: 10.0)
    r = run(app, "doctor", "--json", "--context", "8192")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["context"] == 8192 and report["bandwidth"] == 20e9 and report["cores"] >= 1
    assert report["decode_bandwidth"] == 10e9
    names = {m["name"] for m in report["models"]}
    assert {"qwen3:0.6b", "qwen2.5:7b-q4_k_m", "qwen3:30b-a3b-q4_k_m"} <= names
    assert report["recommended"] in names
    r = run(app, "doctor")
    assert r.exit_code == 0 and "recommended default" in r.flat_out
    assert "qwenkit's measured decode bandwidth" in r.flat_out
