"""Loopback ports for the dev stack's services."""

from __future__ import annotations

import socket

from app.devstack.errors import DevStackError

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def claim_port(requested: int | None, service: str, flag: str) -> int:
    """A free port: the one asked for if it is free (else a clear error), or any."""
    if not requested:
        return free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, requested))
        except OSError:
            raise DevStackError(
                f"{service} port {requested} on {LOOPBACK} is in use",
                f"stop what listens there (ss -ltnp 'sport = :{requested}') or pass {flag} 0 to pick a free port",
            ) from None
    return requested


def is_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((LOOPBACK, port)) == 0
