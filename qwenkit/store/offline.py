"""Privacy at run time: no library qwenkit loads may reach the network.

`enforce_offline()` is called first thing by every runtime command (run, serve, tune, eval, car). Only
`qwenkit pull` goes online. `forbid_outbound()` additionally turns any non-loopback connection attempt of
this Python process into an error, for callers that want a hard guarantee rather than library settings.
"""
import ipaddress
import os
import socket
import sys

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",                 # huggingface_hub: no HTTP at all
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "MODELSCOPE_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "SCARF_NO_ANALYTICS": "true",
    "VLLM_NO_USAGE_STATS": "1",
}


def enforce_offline() -> None:
    os.environ.update(OFFLINE_ENV)
    # libraries that read the environment at import time
    if hub := sys.modules.get("huggingface_hub.constants"):
        hub.HF_HUB_OFFLINE = True
        hub.HF_HUB_DISABLE_TELEMETRY = True
        hub.HF_HUB_DISABLE_IMPLICIT_TOKEN = True
    if datasets := sys.modules.get("datasets.config"):
        datasets.HF_HUB_OFFLINE = True
        datasets.HF_DATASETS_OFFLINE = True


class OutboundBlocked(OSError):
    pass


_forbidden = False


def forbid_outbound() -> None:
    """Refuse every connect/lookup to a non-loopback address from now on (an audit hook; irreversible)."""
    global _forbidden
    if not _forbidden:
        sys.addaudithook(_audit)
        _forbidden = True


def is_local(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").split("%")[0]
    if host in ("", "localhost") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect":
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address[0]):
            raise OutboundBlocked(f"qwenkit runs offline: refused a connection to {address[0]}")
    elif event == "socket.sendto":
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address and not is_local(address[0]):
            raise OutboundBlocked(f"qwenkit runs offline: refused to send to {address[0]}")
    elif event == "socket.getaddrinfo" and not is_local(args[0]):
        raise OutboundBlocked(f"qwenkit runs offline: refused to look up {args[0]}")
