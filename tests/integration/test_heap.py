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


async def test_index_records_and_stored_replies_are_out_of_the_collectors_reach(
    tmp_path: Path,
) -> None:
    """What a full collection would walk in vain (immutable records, stored replies) is not
    tracked, and answers stay right across one."""
    with_bundled_cluster(tmp_path)
    async with running_kdns(COREFILE.replace("TTL", "5"), tmp_path) as srv:
        for _ in range(3):  # stored by the fast path on the second ask
            msg = await ask(srv.port, "web.shop.svc.cluster.local.")
        inst = srv.app.instance
        assert inst is not None
        index = inst.plugins[0].index  # type: ignore[attr-defined]
        endpoints = [ep for eps in index.addresses.values() for ep in eps]
        assert endpoints and not any(gc.is_tracked(ep) for ep in endpoints)
        assert not any(gc.is_tracked(svc) for svc in index.services.values())
        entries = [e for d in inst.dispatchers.values() for e in d.fastpath.entries.values()]
        assert entries and not any(gc.is_tracked(e) for e in entries)
        heap.collect_all()
        for _ in range(2):  # the fast path's bytes, then (cleared) the full path
            msg = await ask(srv.port, "web.shop.svc.cluster.local.")
            assert rrs(msg) == [("web.shop.svc.cluster.local.", "A", "10.96.12.34")]
            for d in inst.dispatchers.values():
                d.fastpath.clear()
