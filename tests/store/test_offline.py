"""Privacy, enforced: runtime commands run in a subprocess where every non-loopback lookup or connection is
refused and logged (an audit-hook guard loaded as sitecustomize, plus an empty network namespace when
`unshare -rn` works). The test fails on any attempt, even one the program swallowed.

To cover a new runtime command, add its argv to RUNTIME."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qwenkit.store import offline
from tests.store import cli_app

ROOT = Path(__file__).resolve().parents[2]
NETGUARD = Path(__file__).parent / "netguard"
CLI = Path(cli_app.__file__)
OFFLINE_VARS = set(offline.OFFLINE_ENV)

RUNTIME = [
    pytest.param(["list"], id="list"),
    pytest.param(["show", "smollm2:135m"], id="show"),
    pytest.param(["run", "smollm2:135m", "Say hi", "--max-tokens", "8"], id="run"),
    pytest.param(["doctor"], id="doctor"),
    pytest.param(["verify"], id="verify"),
    pytest.param(["prune"], id="prune"),
    pytest.param(["tune", "smollm2:135m", "--data", "{tmp}/train.jsonl", "--out", "{tmp}/run", "max_steps=1",
                  "batch_size=1", "max_length=128", "eval_split=0"], id="tune"),
    pytest.param(["eval", "car", "--adapter", "{shipped}", "--no-base", "--baseline", "--limit", "2", "--cases", "4",
                  "--out", "{tmp}/eval"], id="eval-car"),
    pytest.param(["car", "data", "--out", "{tmp}/car-data", "--train", "4", "--val", "2", "--test", "2"],
                 id="car-data"),
    pytest.param(["car", "--baseline"], id="car"),
]
TRAIN_LINE = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


def _netns() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


NETNS = _netns()


def run_guarded(cmd: list[str], tmp: Path, env: dict | None = None, timeout: int = 300):
    """Run `cmd` with outbound networking refused; returns (completed process, logged attempts)."""
    log = tmp / "netguard.log"
    base = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARS and k != "HF_ENDPOINT"}
    base.update(PYTHONPATH=os.pathsep.join([str(NETGUARD), str(ROOT)]), QWENKIT_NETGUARD="1",
                QWENKIT_NETGUARD_LOG=str(log), QWENKIT_HOME=str(tmp / "home"), HOME=str(tmp / "user"),
                HF_HOME=str(tmp / "hf"), **(env or {}))
    if NETNS:
        cmd = ["unshare", "-rn", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh", *cmd]
    proc = subprocess.run(cmd, env=base, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    attempts = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, attempts


@pytest.mark.parametrize("argv", RUNTIME)
def test_runtime_commands_make_no_outbound_connection(argv, tmp_path):
    if argv[0] not in cli_app.commands():
        pytest.skip(f"`qwenkit {argv[0]}` is not built yet")
    from qwenkit.apps.car import SHIPPED_ADAPTER
    (tmp_path / "train.jsonl").write_text("\n".join([json.dumps(TRAIN_LINE)] * 4) + "\n")
    argv = [a.format(tmp=tmp_path, shipped=SHIPPED_ADAPTER) for a in argv]
    proc, attempts = run_guarded([sys.executable, str(CLI), *argv], tmp_path)
    assert attempts == [], f"`qwenkit {' '.join(argv)}` tried to reach the network: {attempts}"
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_resolver_makes_no_outbound_connection(tmp_path):
    code = "from qwenkit.store import resolve; print(resolve('smollm2:135m').path)"
    proc, attempts = run_guarded([sys.executable, "-c", code], tmp_path)
    assert attempts == [] and proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(".gguf")


HUB_DOWNLOAD = """
import huggingface_hub
{setup}
try:
    huggingface_hub.HfApi().model_info("Qwen/Qwen3-0.6B")
except Exception as e:
    print(type(e).__name__)
"""


def test_guard_catches_a_library_going_online(tmp_path):
    """Control: without offline mode huggingface_hub does try to connect, and the guard sees it."""
    proc, attempts = run_guarded([sys.executable, "-c", HUB_DOWNLOAD.format(setup="")], tmp_path,
                                 env={"HF_ENDPOINT": "http://192.0.2.1:9"})   # TEST-NET-1: never routed
    assert attempts and attempts[0]["host"] == "192.0.2.1", proc.stderr


def test_enforce_offline_stops_libraries_before_they_connect(tmp_path):
    setup = "from qwenkit.store import enforce_offline; enforce_offline()"
    proc, attempts = run_guarded([sys.executable, "-c", HUB_DOWNLOAD.format(setup=setup)], tmp_path,
                                 env={"HF_ENDPOINT": "http://192.0.2.1:9"})
    assert attempts == [], attempts
    assert "OfflineModeIsEnabled" in proc.stdout, proc.stdout + proc.stderr


def test_enforce_offline_patches_libraries_already_imported(tmp_path):
    code = ("import os, huggingface_hub.constants as c; from qwenkit.store import enforce_offline; "
            "enforce_offline(); assert c.HF_HUB_OFFLINE and c.HF_HUB_DISABLE_TELEMETRY; "
            "assert os.environ['HF_HUB_OFFLINE'] == os.environ['TRANSFORMERS_OFFLINE'] == '1'; "
            "assert os.environ['HF_DATASETS_OFFLINE'] == '1'; print('ok')")
    proc, attempts = run_guarded([sys.executable, "-c", code], tmp_path)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_forbid_outbound_refuses_remote_and_allows_loopback(tmp_path):
    code = """
import socket, threading
from qwenkit.store.offline import OutboundBlocked, forbid_outbound
server = socket.create_server(("127.0.0.1", 0))
threading.Thread(target=server.accept, daemon=True).start()
forbid_outbound()
socket.create_connection(server.getsockname(), timeout=5).close()
for target in [("192.0.2.1", 9), ("example.invalid", 80)]:
    try:
        socket.create_connection(target, timeout=1)
    except OutboundBlocked:
        print("blocked", target[0])
"""
    env = {k: v for k, v in os.environ.items() if k != "QWENKIT_NETGUARD"}
    proc = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.split("\n")[:2] == ["blocked 192.0.2.1", "blocked example.invalid"], proc.stderr


@pytest.mark.parametrize("host, local", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                         ("127.8.9.1", True), ("10.0.0.1", False), ("huggingface.co", False),
                                         ("8.8.8.8", False), (b"localhost", True), (None, True)])
def test_loopback_detection(host, local):
    assert offline.is_local(host) is local


SERVE_AND_ASK = """
import json, socket, subprocess, sys, time, urllib.request
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = subprocess.Popen([sys.executable, {cli!r}, "serve", "smollm2:135m", "--port", str(port)])
try:
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{{port}}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    body = json.dumps({{"model": "smollm2:135m", "max_tokens": 8,
                       "messages": [{{"role": "user", "content": "Say hi"}}]}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{{port}}/v1/chat/completions", body,
                                     {{"Content-Type": "application/json"}})
    reply = json.load(urllib.request.urlopen(request, timeout=120))
    print(reply["choices"][0]["finish_reason"])
finally:
    server.terminate()
    server.wait(timeout=60)
"""


def test_serve_answers_on_loopback_without_outbound_connections(tmp_path):
    """`qwenkit serve` loads, answers a real request over loopback, and never tries to reach further."""
    proc, attempts = run_guarded([sys.executable, "-c", SERVE_AND_ASK.format(cli=str(CLI))], tmp_path)
    assert attempts == [], f"`qwenkit serve` tried to reach the network: {attempts}"
    assert proc.returncode == 0 and proc.stdout.strip() in ("stop", "length"), proc.stderr[-3000:]
