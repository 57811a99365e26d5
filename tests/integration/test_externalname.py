"""ExternalName services pointing outside the cluster: CNAME plus the target via `forward`."""

from __future__ import annotations

from pathlib import Path

import dns.flags
import dns.rcode

from tests.support.client import ask, rrs
from tests.support.server import running_kdns
from tests.support.upstream import Behaviour, fake_upstream

SNAPSHOT = """
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- apiVersion: v1
  kind: Service
  metadata: {name: payments, namespace: shop}
  spec: {type: ExternalName, externalName: www.example.test}
"""
QNAME = "payments.shop.svc.cluster.local."
CNAME = (QNAME, "CNAME", "www.example.test.")


def corefile(port: int) -> str:
    return (
        ".:PORT {\n bind 127.0.0.1\n"
        " kubernetes cluster.local {\n  snapshot cluster.yaml\n }\n"
        f" forward . 127.0.0.1:{port}\n}}\n"
    )


async def test_external_target_is_resolved_through_forward(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(SNAPSHOT)
    async with fake_upstream() as up:
        up.add("www.example.test.", "A", "192.0.2.10")
        async with running_kdns(corefile(up.port), tmp_path) as srv:
            msg = await ask(srv.port, QNAME, "A")
            assert msg.rcode() == dns.rcode.NOERROR and not msg.flags & dns.flags.TC
            assert rrs(msg) == [CNAME, ("www.example.test.", "A", "192.0.2.10")]
            # An upstream that truncates even over TCP: the CNAME comes back with TC set.
            up.behaviour = Behaviour(mode="truncate_both")
            msg = await ask(srv.port, QNAME, "A", tcp=True)
            assert msg.flags & dns.flags.TC
            assert rrs(msg) == [CNAME]
            # A dead upstream: the CNAME alone, still NOERROR.
            await up.stop()
            msg = await ask(srv.port, QNAME, "A")
            assert msg.rcode() == dns.rcode.NOERROR
            assert rrs(msg) == [CNAME]
