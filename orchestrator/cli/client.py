"""The CLI's side of the control API: a small synchronous client on the standard library's http.client
that turns every failure into one ClientError with a one-line reason (not running, refused, unknown
service, bad parameter ...).

Why not httpx (which the supervisor itself uses for probes): importing it cost 0.25-0.5 s of every
CLI call on this machine (it pulls in rich and click when they are installed), more than the rest of
the command; http.client costs about 10 ms, and the CLI needs only plain HTTP/1.1 to loopback, one
request at a time, and the SSE lines of a log follow. Where the address and token come from: target.py.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

from orchestrator.errors import OrchestratorError

__all__ = ["ApiClient", "ClientError", "SseMessage", "StreamEnded"]

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0  # reads; commands wait as long as the supervisor takes (a stop, a drain)
FOLLOW_IDLE_S = 60.0  # a follow hears a heartbeat every 15 s; this long without one: the server is gone


class ClientError(OrchestratorError):
    """Anything that kept a command from getting its answer, said in one line (`details` may add lines)."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class StreamEnded(ClientError):
    """A followed stream ended because the supervisor went away (stopped, or the connection was cut)."""


SseMessage = tuple[str, str]  # (event, data); event is "message" unless the server named it


class ApiClient:
    def __init__(self, base_url: str, token: str | None, *, token_hint: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self._token_hint = token_hint
        parts = urlsplit(self.base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ClientError(f"cannot use {base_url!r} as the supervisor's address: expected http://HOST:PORT")
        self._host, self._port = parts.hostname, parts.port or 80
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._conn: http.client.HTTPConnection | None = None

    def copy(self) -> ApiClient:
        """Another client to the same supervisor with the same token (one per thread)."""
        twin = ApiClient(self.base_url, None, token_hint=self._token_hint)
        twin._headers = dict(self._headers)
        return twin

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        return self._call("GET", path, params, READ_TIMEOUT_S)

    def post(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        return self._call("POST", path, params, None)  # as long as the command takes

    def follow(self, path: str, params: Mapping[str, str | int],
               on_open: Callable[[], None] | None = None) -> Iterator[SseMessage]:
        """Server-Sent Events of a GET. Raises StreamEnded when the server ends the stream: it does so
        only when the supervisor stops. `on_open` is called once the server has answered."""
        with _transport_errors(self.base_url):
            response = self._send("GET", path, params, FOLLOW_IDLE_S)
        if response.status >= 400:
            raise self._refused(response)
        if on_open is not None:
            on_open()
        event = "message"
        with _transport_errors(self.base_url):
            while True:
                raw = response.readline()
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    yield event, line.removeprefix("data: ")
                    event = "message"
        raise StreamEnded(f"the supervisor at {self.base_url} ended the stream (it stopped)")

    def _call(self, method: str, path: str, params: Mapping[str, str | int] | None, timeout: float | None) -> Any:
        with _transport_errors(self.base_url):
            response = self._send(method, path, params, timeout)
            body = response.read()
        if response.status >= 400:
            raise self._refused(response, body)
        if (response.getheader("content-type") or "").startswith("application/json"):
            return json.loads(body)
        return body.decode("utf-8", "replace")

    def _send(self, method: str, path: str, params: Mapping[str, str | int] | None,
              timeout: float | None) -> http.client.HTTPResponse:
        self.close()  # one connection per request: few requests, and no stale keep-alive to retry
        self._conn = conn = http.client.HTTPConnection(self._host, self._port, timeout=CONNECT_TIMEOUT_S)
        try:
            conn.connect()
        except OSError as exc:  # refused, or nothing there within the connect timeout
            raise ClientError(f"no supervisor answering at {self.base_url} (is `orchestrator run` running?)") from exc
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        url = f"{path}?{urlencode(params)}" if params else path
        conn.request(method, url, headers={**self._headers, "Content-Length": "0"} if method == "POST"
                     else self._headers)
        return conn.getresponse()

    def _refused(self, response: http.client.HTTPResponse, body: bytes | None = None) -> ClientError:
        try:
            parsed = json.loads(response.read() if body is None else body)
        except (ValueError, OSError):
            parsed = {}
        message = parsed.get("error") if isinstance(parsed, dict) else None
        message = message or f"{response.status} {response.reason}"
        if response.status == 401:
            message += f"; the CLI used {self._token_hint}"
        issues = parsed.get("issues") if isinstance(parsed, dict) else None
        return ClientError(message, [str(i) for i in issues] if isinstance(issues, list) else None)


@contextmanager
def _transport_errors(base_url: str) -> Iterator[None]:
    """Transport failures as ClientError: not running, timed out, cut off."""
    try:
        yield
    except TimeoutError as exc:
        raise ClientError(f"the supervisor at {base_url} did not answer in time") from exc
    except (ConnectionResetError, ConnectionAbortedError, http.client.IncompleteRead,
            http.client.RemoteDisconnected) as exc:
        raise StreamEnded(f"the supervisor at {base_url} went away (the connection was cut)") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ClientError(f"talking to the supervisor at {base_url}: {exc}") from exc
