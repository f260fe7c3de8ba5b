"""cli/client.py reads a whole HTTP/1.1 response off a real socket: Content-Length, chunked, no body,
and a response cut short (the supervisor went away)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from orchestrator.cli.client import ApiClient, ClientError, StreamEnded


@contextmanager
def answering(reply: bytes) -> Iterator[str]:
    """A one-connection server on loopback that reads the request head, sends `reply` in small
    pieces and closes; yields its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            seen.append(data)
            for i in range(0, len(reply), 7):  # split anywhere: the client must reassemble
                conn.sendall(reply[i:i + 7])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        thread.join(10)
        server.close()
    assert seen and seen[0].startswith(b"GET /api/status HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer tok\r\n" in seen[0]


def test_content_length() -> None:
    body = b'{"services": [1, 2]}'
    reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    with answering(reply) as url:
        assert ApiClient(url, "tok").get("/api/status") == {"services": [1, 2]}


def test_chunked() -> None:
    reply = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5\r\n{\"a\":\r\n4;ext=1\r\n 12}\r\n0\r\n\r\n")
    with answering(reply) as url:
        assert ApiClient(url, "tok").get("/api/status") == {"a": 12}


def test_no_content() -> None:
    with answering(b"HTTP/1.1 204 No Content\r\n\r\n") as url:
        assert ApiClient(url, "tok").get("/api/status") == ""


def test_refusal_carries_the_message_and_status() -> None:
    body = b'{"error": "no service named \'x\'"}'
    reply = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body), body)
    with answering(reply) as url, pytest.raises(ClientError) as refused:
        ApiClient(url, "tok").get("/api/status")
    assert str(refused.value) == "no service named 'x'" and refused.value.status == 404


@pytest.mark.parametrize("reply", [b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
                                   b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
                                   b"HTTP/1.1 200 OK\r\ncontent-le"])
def test_cut_short_is_the_supervisor_going_away(reply: bytes) -> None:
    with answering(reply) as url, pytest.raises(StreamEnded):
        ApiClient(url, "tok").get("/api/status")
