"""`qwenkit serve`: the OpenAI- and Ollama-compatible HTTP server."""
import ipaddress
import os
from typing import Annotated

import typer

from qwenkit.cli.common import fail, friendly_errors
from qwenkit.llm import DEFAULT_MODEL


def register(app: typer.Typer) -> None:
    app.command()(serve)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@friendly_errors
def serve(
    models: Annotated[list[str] | None, typer.Argument(
        help="Models to serve: store names, or NAME=PATH for a folder or .gguf [default: smollm2:135m]")] = None,
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    api_key: Annotated[str | None, typer.Option(
        help="Require `Authorization: Bearer KEY` on every endpoint but /health (or set QWENKIT_API_KEY)")] = None,
    insecure: Annotated[bool, typer.Option(help="Allow a non-loopback --host without --api-key")] = False,
    max_model_len: Annotated[int | None, typer.Option(help="Context length limit per model")] = None,
    max_num_seqs: Annotated[int, typer.Option(help="Sequences decoded together per model")] = 16,
    max_queue: Annotated[int, typer.Option(help="Requests waiting beyond max-num-seqs before 429")] = 64,
    kv_cache_memory: Annotated[int, typer.Option(help="KV cache bytes per model")] = 1 << 30,
    dense_weights: Annotated[bool, typer.Option(
        help="Keep a bf16 copy of int4/int8 weights for batched steps: faster with many users, 2 bytes per "
             "weight more")] = False,
    keep_alive: Annotated[str, typer.Option(help="Unload a model idle this long (5m, 30s; -1: never)")] = "-1",
    preload: Annotated[bool, typer.Option("--preload/--lazy", help="Load models at start or on first use")] = True,
    max_body_mb: Annotated[float, typer.Option(help="Request body size limit in MiB")] = 8.0,
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16")] = "auto",
    quant: Annotated[str, typer.Option(help="Weight quantization: auto, none, int8, int4")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads")] = None,
    drain_timeout: Annotated[float, typer.Option(
        min=0, help="On SIGTERM/Ctrl+C, seconds requests in flight may still run (new ones get 503) before exiting")]
    = 30.0,
    access_log: Annotated[bool, typer.Option(help="Log one line per request (method, path, status; never bodies)")]
    = False,
    adapter: Annotated[list[str] | None, typer.Option(
        help="NAME=DIR: a PEFT LoRA adapter on the first model, chosen per request as MODEL:NAME (repeatable)")]
    = None,
) -> None:
    """Serve models over HTTP: OpenAI (/v1) and Ollama (/api) APIs, and a web chat at /."""
    from qwenkit.store import enforce_offline
    enforce_offline()
    api_key = api_key or os.environ.get("QWENKIT_API_KEY")
    if not is_loopback(host) and not api_key and not insecure:
        fail(f"refusing to serve on {host} without --api-key: anyone on the network could use it. "
             "Set --api-key (or QWENKIT_API_KEY), or pass --insecure if the network is trusted")
    import uvicorn

    from qwenkit.server.app import Settings, create_app
    from qwenkit.server.pool import ModelPool, parse_keep_alive
    from qwenkit.server.shutdown import DrainingServer
    try:
        keep = parse_keep_alive(keep_alive)
    except ValueError as e:
        fail(str(e))
    adapters = dict(_adapter_spec(a) for a in adapter or [])
    pool = ModelPool(models or [DEFAULT_MODEL], keep_alive=keep, adapters=adapters,
                     load_options=dict(dtype=dtype, device=device, quant=quant, max_model_len=max_model_len,
                                       threads=threads),
                     engine_options=dict(max_num_seqs=max_num_seqs, max_queue=max_queue,
                                         kv_cache_memory=kv_cache_memory, dense_weights=dense_weights))
    settings = Settings(api_key=api_key, max_body_bytes=int(max_body_mb * (1 << 20)), preload=preload,
                        adapter_loading=bool(api_key) or is_loopback(host), drain_timeout=drain_timeout)
    app = create_app(pool, settings)
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, timeout_graceful_shutdown=5,
                            log_level="info")
    DrainingServer(config).run()


def _adapter_spec(spec: str) -> tuple[str, str]:
    """NAME=DIR, or just DIR, served under the folder's name; the folder is checked before the server starts."""
    from pathlib import Path

    from qwenkit.tune.peft_format import read_adapter
    name, sep, folder = spec.partition("=")
    if not sep:
        name, folder = Path(spec.rstrip("/")).name, spec
    if not name.strip() or not folder.strip():
        fail(f"--adapter {spec!r}: expected NAME=DIR, such as --adapter pirate=./pirate-lora")
    read_adapter(folder.strip())
    return name.strip(), folder.strip()
