"""`reload`: a changed Corefile is swapped in under a steady load with no failed query; a broken
one keeps the old configuration serving, is logged with file:line and counted."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.integration.test_http_endpoints import SNAPSHOT
from tests.support.client import ask
from tests.support.http import scrape, series
from tests.support.load import steady_load
from tests.support.ports import free_port
from tests.support.server import running_kdns
from tests.support.waiting import eventually

NAME = "web.default.svc.cluster.local."


def corefile(metrics: int, ttl: int, reload: str = "reload 2s 1s") -> str:
    return f"""\
cluster.local:PORT {{
    bind 127.0.0.1
    {reload}
    prometheus 127.0.0.1:{metrics}
    kubernetes {{
        snapshot snap.yaml
        ttl {ttl}
    }}
}}
"""


async def test_reload_under_load_drops_nothing(tmp_path: Path) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    metrics = free_port()
    async with running_kdns(corefile(metrics, 5), tmp_path) as srv:
        listener_before = srv.app.listeners[("127.0.0.1", srv.port)]
        async with steady_load(srv.port, NAME) as load:
            await eventually(lambda: load.ok >= 20, 5)
            srv.corefile.write_text(corefile(metrics, 7).replace("PORT", str(srv.port)))
            # The poller (2s ± 0.5s) notices the new SHA512 and swaps the configuration in.
            await eventually(lambda: load.answers and load.answers[-1] == "7", 10)
            seen = load.ok
            await eventually(lambda: load.ok >= seen + 20, 5)
        assert load.failed == []
        assert "5" in load.answers and load.answers[-1] == "7"
        # The DNS sockets were kept, not reopened.
        assert srv.app.listeners[("127.0.0.1", srv.port)] is listener_before
        m = await scrape(metrics)
        assert series(m, "coredns_reload_failed_total") == {(): 0.0}
        (info,) = series(m, "coredns_reload_version_info")
        assert dict(info)["hash"] == "sha512"
        assert dict(info)["value"] == srv.app.config.digest
        # Counters are process-wide: queries from before the reload are still counted.
        assert sum(series(m, "coredns_dns_requests_total").values()) >= load.ok


async def test_broken_corefile_keeps_old_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    metrics = free_port()
    # A long interval: the test drives the check itself, deterministically.
    async with running_kdns(corefile(metrics, 5, "reload 1h"), tmp_path) as srv:
        old = srv.app.config
        srv.corefile.write_text(
            corefile(metrics, 5, "reload 1h").replace("PORT", str(srv.port))
            + "oops {\n    frobnicate\n}\n"
        )
        with caplog.at_level(logging.INFO, logger="kdns"):
            assert await srv.app.reloader.check() is False
        assert f"{srv.corefile}:11: unknown directive" in caplog.text
        assert srv.app.config is old
        reply = await ask(srv.port, NAME, "A")
        assert reply.answer[0].ttl == 5
        m = await scrape(metrics)
        assert series(m, "coredns_reload_failed_total") == {(): 1.0}
        # The same broken file is not retried (or counted) again.
        assert await srv.app.reloader.check() is False
        assert series(await scrape(metrics), "coredns_reload_failed_total") == {(): 1.0}
        # A fixed file is picked up.
        srv.corefile.write_text(corefile(metrics, 9, "reload 1h").replace("PORT", str(srv.port)))
        assert await srv.app.reloader.check() is True
        assert (await ask(srv.port, NAME, "A")).answer[0].ttl == 9


async def test_reload_that_cannot_bind_keeps_old_config(tmp_path: Path) -> None:
    (tmp_path / "snap.yaml").write_text(SNAPSHOT)
    metrics = free_port()
    async with running_kdns(corefile(metrics, 5, "reload 1h"), tmp_path) as srv:
        busy = free_port()
        blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", busy)
        try:
            text = corefile(metrics, 6, "reload 1h").replace("PORT", str(srv.port))
            srv.corefile.write_text(text + f".:{srv.port} {{\n    health 127.0.0.1:{busy}\n}}\n")
            assert await srv.app.reloader.check() is False
        finally:
            blocker.close()
        assert (await ask(srv.port, NAME, "A")).answer[0].ttl == 5
        assert series(await scrape(metrics), "coredns_reload_failed_total") == {(): 1.0}
