"""The CLI's side of the control API: a small synchronous client that turns every failure into one
ClientError with a one-line reason (not running, refused, unknown service, bad parameter ...).

Why not httpx (which the supervisor itself uses for probes): importing it cost 0.25-0.5 s of every
CLI call on this machine (it pulls in rich and click when they are installed), more than the rest of
the command. Why not http.client for a plain request either: it imports the email package (its header
parser), +28 ms of CPU per call against +2 ms for `socket` (best of 21 interleaved runs, 2-core dev box,
`python -c "import http.client"` against `python -c pass`), a quarter of what `status` may cost over
a bare interpreter (issue 16). A command is one HTTP/1.1 request to loopback on a connection of its own:
write it, read the head and the body (Content-Length, or chunked), close. Only `follow`
(the SSE lines of `logs -f`, a stream read line by line as it comes) uses http.client, imported there.
The host is resolved as ASCII bytes: a str host makes getaddrinfo import the idna codec (unicodedata,
stringprep), a few ms more. Where the address and token come from: target.py.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    import http.client

__all__ = ["ApiClient", "ClientError", "SseMessage", "StreamEnded"]

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0  # reads; commands wait as long as the supervisor takes (a stop, a drain)
FOLLOW_IDLE_S = 60.0  # a follow hears a heartbeat every 15 s; this long without one: the server is gone


class ClientError(OrchestratorError):
    """Anything that kept a command from getting its answer, said in one line (`details` may add lines)."""

    def __init__(self, message: str, details: list[str] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.details = details or []
        self.status = status  # the HTTP status of a refusal


class StreamEnded(ClientError):
    """A followed stream ended because the supervisor went away (stopped, or the connection was cut)."""


SseMessage = tuple[str, str]  # (event, data); event is "message" unless the server named it


class _Reply(NamedTuple):
    status: int
    reason: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class ApiClient:
    def __init__(self, base_url: str, token: str | None, *, token_hint: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self._token_hint = token_hint
        parts = urlsplit(self.base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ClientError(f"cannot use {base_url!r} as the supervisor's address: expected http://HOST:PORT")
        self._host, self._port = parts.hostname, parts.port or 80
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._conn: http.client.HTTPConnection | None = None  # follow's

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
            raise self._refused(response.status, response.reason, _read(response))
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
        url = f"{path}?{urlencode(params)}" if params else path
        head = [f"{method} {url} HTTP/1.1", f"Host: {self._host_header}",
                *(f"{k}: {v}" for k, v in self._headers.items())]
        if method == "POST":
            head.append("Content-Length: 0")
        with _transport_errors(self.base_url):
            sock = self._connect()
            try:
                sock.settimeout(timeout)
                sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                reply = _read_reply(sock)
            finally:
                sock.close()
        if reply.status >= 400:
            raise self._refused(reply.status, reply.reason, reply.body)
        if reply.headers.get("content-type", "").startswith("application/json"):
            return json.loads(reply.body)
        return reply.body.decode("utf-8", "replace")

    @property
    def _host_header(self) -> str:
        """As http.client writes it (the API's Host rule compares it with the listener)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return host if self._port == 80 else f"{host}:{self._port}"

    def _connect(self) -> socket.socket:
        host: str | bytes = self._host.encode("ascii") if self._host.isascii() else self._host
        try:
            return socket.create_connection((host, self._port), timeout=CONNECT_TIMEOUT_S)  # type: ignore[arg-type]
        except OSError as exc:  # refused, or nothing there within the connect timeout
            raise ClientError(f"no supervisor answering at {self.base_url} (is `orchestrator run` running?)") from exc

    def _send(self, method: str, path: str, params: Mapping[str, str | int] | None,
              timeout: float | None) -> http.client.HTTPResponse:
        import http.client  # here: only a follow pays for it (see the module's docstring)

        self.close()  # one connection per follow
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

    def _refused(self, status: int, reason: str, body: bytes) -> ClientError:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {}
        message = parsed.get("error") if isinstance(parsed, dict) else None
        message = message or f"{status} {reason}"
        if status == 401:
            message += f"; the CLI used {self._token_hint}"
        issues = parsed.get("issues") if isinstance(parsed, dict) else None
        return ClientError(message, [str(i) for i in issues] if isinstance(issues, list) else None, status)


def _read(response: http.client.HTTPResponse) -> bytes:
    try:
        return response.read()
    except OSError:
        return b""


def _read_reply(sock: socket.socket) -> _Reply:
    """One HTTP/1.1 response, read to its end (Content-Length, chunked, or the server closing); we
    close first, so the TIME_WAIT stays on our side, never on the supervisor's port. A response that
    is not all there raises ConnectionResetError (the connection was cut: StreamEnded)."""
    data = bytearray()
    while (end := data.find(b"\r\n\r\n")) < 0:
        data += _recv(sock)
    lines = data[:end].decode("latin-1").split("\r\n")
    body = data[end + 4:]
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ConnectionResetError("not an HTTP response")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
    if status in (204, 304):
        return _Reply(status, reason, headers, b"")  # no body, by definition
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while (whole := _dechunk(body)) is None:
            body += _recv(sock)
        return _Reply(status, reason, headers, whole)
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(body) < size:
            body += _recv(sock)
        del body[size:]
    else:
        while chunk := sock.recv(1 << 16):
            body += chunk
    return _Reply(status, reason, headers, bytes(body))


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(1 << 16)
    if not chunk:
        raise ConnectionResetError("the response was cut short")
    return chunk


def _dechunk(data: bytes | bytearray) -> bytes | None:
    """The body of a chunked response; None while it is not all there."""
    out: list[bytes] = []
    at = 0
    while True:
        end = data.find(b"\r\n", at)
        if end < 0:
            return None
        try:
            size = int(data[at:end].split(b";", 1)[0], 16)
        except ValueError:
            raise ConnectionResetError("not a chunked response") from None
        if size == 0:
            return b"".join(out)
        if end + 2 + size + 2 > len(data):
            return None
        out.append(bytes(data[end + 2: end + 2 + size]))
        at = end + 2 + size + 2


@contextmanager
def _transport_errors(base_url: str) -> Iterator[None]:
    """Transport failures as ClientError: not running, timed out, cut off."""
    try:
        yield
    except TimeoutError as exc:
        raise ClientError(f"the supervisor at {base_url} did not answer in time") from exc
    except (ConnectionResetError, ConnectionAbortedError) as exc:  # http.client's RemoteDisconnected too
        raise StreamEnded(f"the supervisor at {base_url} went away (the connection was cut)") from exc
    except OSError as exc:
        raise ClientError(f"talking to the supervisor at {base_url}: {exc}") from exc
    except Exception as exc:
        http = sys.modules.get("http.client")  # a follow's errors; nothing else imports it
        if http is None or not isinstance(exc, http.HTTPException):
            raise
        if isinstance(exc, http.IncompleteRead):
            raise StreamEnded(f"the supervisor at {base_url} went away (the connection was cut)") from exc
        raise ClientError(f"talking to the supervisor at {base_url}: {exc}") from exc
