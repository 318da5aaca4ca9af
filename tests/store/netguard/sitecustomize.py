"""Test-only network guard. With this folder on PYTHONPATH and QWENKIT_NETGUARD=1, every Python process
refuses, and logs to $QWENKIT_NETGUARD_LOG, any attempt to look up or connect to a non-loopback address.
Audit events fire before the system call, so even an attempt a library swallows is recorded."""
import errno
import ipaddress
import json
import os
import socket
import sys

state = {"active": os.environ.get("QWENKIT_NETGUARD") == "1"}
attempts: list[dict] = []


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


def _target(event: str, args: tuple):
    if event in ("socket.connect", "socket.sendto"):
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address:
            return address[0]
    elif event == "socket.getaddrinfo":
        return args[0]
    return None


def hook(event: str, args: tuple) -> None:
    if not state["active"] or not event.startswith("socket."):
        return
    host = _target(event, args)
    if host is None or is_local(host):
        return
    attempt = {"event": event, "host": str(host), "pid": os.getpid(), "argv": sys.argv}
    attempts.append(attempt)
    if log := os.environ.get("QWENKIT_NETGUARD_LOG"):
        with open(log, "a") as f:
            f.write(json.dumps(attempt) + "\n")
    raise OSError(errno.ENETUNREACH, f"netguard: outbound {event} to {host} refused during tests")


if state["active"]:
    sys.addaudithook(hook)
