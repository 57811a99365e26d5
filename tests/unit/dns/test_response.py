"""CoreDNS's response classification, shared by `log` ({class}) and `cache` (its tiers)."""

from __future__ import annotations

import pytest

from kdns.dns import records
from kdns.dns.message import NOERROR, NXDOMAIN, REFUSED, SERVFAIL, Reply
from kdns.dns.response import Class, classify

A = records.a("www.example.", 30, "192.0.2.1")
NS = records.ns("sub.example.", 30, "ns.sub.example.")
SOA = records.soa("example.", 30, "ns.example.", "host.example.", 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("reply", "want"),
    [
        (Reply(rcode=NOERROR, answer=(A,)), Class.SUCCESS),
        (Reply(rcode=NOERROR, authority=(NS,)), Class.SUCCESS),  # a delegation
        (Reply(rcode=NOERROR, authority=(NS, SOA)), Class.DENIAL),  # NODATA
        (Reply(rcode=NOERROR), Class.DENIAL),
        (Reply(rcode=NXDOMAIN, authority=(SOA,)), Class.DENIAL),
        (Reply(rcode=SERVFAIL), Class.ERROR),
        (Reply(rcode=REFUSED), Class.ERROR),
    ],
)
def test_classify(reply: Reply, want: Class) -> None:
    assert classify(reply) is want
    assert classify(reply) == want.value  # as the log line and the cache tiers spell it
