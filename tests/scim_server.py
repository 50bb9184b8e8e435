"""A real scim2-server process for end-to-end tests: the ``scim_server`` fixture.

A test module imports the fixture by name (``from tests.scim_server import scim_server``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

__all__ = ["free_port", "scim_server"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def scim_server() -> Iterator[tuple[str, str]]:
    """scim2-server's CLI on 127.0.0.1 (a free port) with a bearer token; yields (url, token)."""
    token = "e2e-" + os.urandom(8).hex()
    for _ in range(3):  # another process may grab the free port first
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "scim2_server.testserver.cli", "--port", str(port)]
            + ["--bearer-token", token],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/v2"
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ServiceProviderConfig", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            process.kill()
            process.wait()
            continue
        try:
            yield url, token
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return
    pytest.fail("scim2-server did not start")
