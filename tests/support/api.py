"""A real supervisor with its real control API on an ephemeral 127.0.0.1 port, and an httpx client."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute

from orchestrator.api.server import ApiServer
from orchestrator.api.token import read_token
from orchestrator.app import build_api_server, open_api_socket
from orchestrator.config.spec import ApiSpec, Config
from orchestrator.core.history import History
from orchestrator.core.supervisor import Supervisor
from orchestrator.logs.follow import Followers
from tests.support.helpers import make_system


@dataclass
class Served:
    sup: Supervisor
    server: ApiServer
    url: str
    token: str
    client: httpx.AsyncClient  # no token: add `headers=auth` where a test wants it
    followers: Followers

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def with_api(cfg: Config, *, host: str = "127.0.0.1", token: str | None = None) -> Config:
    return dataclasses.replace(cfg, api=ApiSpec(host=host, port=0, token=token))


@asynccontextmanager
async def serving(
    cfg: Config, *, routes: Sequence[BaseRoute] = (), collectors: Sequence[Collector] = (),
    history: History | None = None,
) -> AsyncIterator[Served]:
    """Supervisor and API running, as app.run wires them; on exit: shutdown, then the server stops."""
    if cfg.api.port != 0:
        cfg = with_api(cfg, host=cfg.api.host, token=cfg.api.token)
    sock = open_api_socket(cfg)
    system = make_system(cfg)
    sup = system.supervisor
    if history is not None:
        sup.history = history  # before run(): the sampler it starts uses this one
    followers = Followers()
    server = build_api_server(cfg, system, sock, routes=routes, collectors=collectors, followers=followers)
    async with anyio.create_task_group() as tg:
        await tg.start(system.run)
        url = await tg.start(server.serve_in_group)
        token = read_token(cfg.api, cfg.state_dir)
        assert token
        try:
            async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=30) as client:
                yield Served(sup, server, url, token, client, followers)
        finally:
            with anyio.move_on_after(30, shield=True):
                await sup.shutdown()
            server.stop()
