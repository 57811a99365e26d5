"""Freezing objects out of the cyclic GC must not keep a replaced configuration alive."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from kdns import heap
from kdns.config import from_text
from tests.support.client import ask, rrs
from tests.support.server import running_kdns, with_bundled_cluster

COREFILE = """\
.:PORT {
    bind 127.0.0.1
    kubernetes cluster.local {
        snapshot cluster.yaml
        ttl TTL
    }
}
"""


async def test_a_reload_frees_the_old_instance(tmp_path: Path) -> None:
    with_bundled_cluster(tmp_path)
    async with running_kdns(COREFILE.replace("TTL", "5"), tmp_path) as srv:
        old = srv.app.instance
        assert old is not None
        gone = weakref.ref(old.plugins[0])
        builder = weakref.ref(old.plugins[0].builder)  # type: ignore[attr-defined]
        heap.freeze_young()  # as the keeper does while serving: the plugin is frozen now
        del old
        text = COREFILE.replace("TTL", "7").replace("PORT", str(srv.port))
        await srv.app.activate(from_text(text, str(srv.corefile)))
        msg = await ask(srv.port, "web.shop.svc.cluster.local.")
        assert rrs(msg) == [("web.shop.svc.cluster.local.", "A", "10.96.12.34")]
        assert msg.answer[0].ttl == 7
        gc.collect()
        assert gone() is None, "the replaced kubernetes plugin is still alive"
        assert builder() is None, "the replaced index builder is still alive"
