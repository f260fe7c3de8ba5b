"""The CLI's side of the control API: a small synchronous httpx client that turns every failure into
one ClientError with a one-line reason (not running, refused, unknown service, bad parameter ...).

The address comes from the config's api.listen (a wildcard listen is reached on loopback) and the token
is found the way the supervisor stores it (apitoken.read_token).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import httpx

from orchestrator.api.token import read_token, token_path
from orchestrator.config.spec import Config
from orchestrator.errors import OrchestratorError

__all__ = ["ApiClient", "ClientError", "SseMessage", "api_url"]

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0  # reads; commands wait as long as the supervisor takes (a stop, a drain)
FOLLOW_IDLE_S = 60.0  # a follow hears a heartbeat every 15 s; this long without one: the server is gone

_LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class ClientError(OrchestratorError):
    """Anything that kept a command from getting its answer, said in one line (`details` may add lines)."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


SseMessage = tuple[str, str]  # (event, data); event is "message" unless the server named it


def api_url(config: Config) -> str:
    host = _LOOPBACK_FOR.get(config.api.host, config.api.host)
    if config.api.port == 0:
        raise ClientError(f"api.listen in {config.path} has port 0 (any free port): the CLI cannot find it; "
                          "give the API a fixed port")
    return f"http://[{host}]:{config.api.port}" if ":" in host else f"http://{host}:{config.api.port}"


class ApiClient:
    def __init__(self, base_url: str, token: str | None, *, token_hint: str = "") -> None:
        self.base_url = base_url
        self._token_hint = token_hint
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        # trust_env=False: our own supervisor is never behind the user's HTTP proxy.
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, trust_env=False)

    @classmethod
    def for_config(cls, config: Config) -> ApiClient:
        hint = "api.token in the config" if config.api.token else f"the token file {token_path(config.state_dir)}"
        return cls(api_url(config), read_token(config.api, config.state_dir), token_hint=hint)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        return self._call("GET", path, params=params)

    def post(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        return self._call("POST", path, params=params, timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT_S))

    def follow(self, path: str, params: Mapping[str, str | int]) -> Iterator[SseMessage]:
        """Server-Sent Events of a GET, until the server ends the stream."""
        timeout = httpx.Timeout(FOLLOW_IDLE_S, connect=CONNECT_TIMEOUT_S)
        stream = self._http.stream("GET", path, params=params, timeout=timeout)
        with _transport_errors(self.base_url), stream as response:
            if response.status_code >= 400:
                response.read()
                raise self._refused(response)
            event = "message"
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    yield event, line.removeprefix("data: ")
                    event = "message"

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        with _transport_errors(self.base_url):
            response = self._http.request(method, path, **kw)
        if response.status_code >= 400:
            raise self._refused(response)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def _refused(self, response: httpx.Response) -> ClientError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        message = body.get("error") if isinstance(body, dict) else None
        message = message or f"{response.status_code} {response.reason_phrase}"
        if response.status_code == 401:
            message += f"; the CLI used {self._token_hint}"
        issues = body.get("issues") if isinstance(body, dict) else None
        return ClientError(message, [str(i) for i in issues] if isinstance(issues, list) else None)


@contextmanager
def _transport_errors(base_url: str) -> Iterator[None]:
    """Transport failures as ClientError: not running, timed out, cut off."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise ClientError(f"no supervisor answering at {base_url} (is `orchestrator run` running?)") from exc
    except httpx.TimeoutException as exc:
        raise ClientError(f"the supervisor at {base_url} did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise ClientError(f"talking to the supervisor at {base_url}: {exc}") from exc
