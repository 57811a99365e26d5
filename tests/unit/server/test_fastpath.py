"""The fast path's bytes: ID splicing, validity, deadlines, TTL countdown and shuffling."""

from __future__ import annotations

import dns.message

from kdns import admission
from kdns.dns import records as rr
from kdns.dns import wire
from kdns.dns.message import NOERROR, Reply, Request
from kdns.plugins.memo import Memo
from kdns.server import fastpath
from kdns.server.fastpath import FastPath
from tests.support.client import make_query


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _store(fp: FastPath, memo: Memo, answers: tuple[rr.RR, ...]) -> bytes:
    q = make_query("web.shop.svc.cluster.local.", "A").to_wire()
    req = wire.decode_query(q, "udp", "127.0.0.1")
    assert isinstance(req, Request)
    spans: list[wire.Span] = []
    out = wire.encode_spans(req, Reply(NOERROR, answers, aa=True), spans)
    # Asked twice: only a query seen before is stored.
    fp.store(q, out, memo, spans, None)
    fp.store(q, out, memo, spans, None)
    return q


def test_a_query_is_stored_on_its_second_ask_only() -> None:
    fp = FastPath(clock=Clock())
    memo = Memo()
    memo.allow()
    q = make_query("web.shop.svc.cluster.local.", "A").to_wire()
    req = wire.decode_query(q, "udp", "127.0.0.1")
    assert isinstance(req, Request)
    out = wire.encode(req, Reply(NOERROR, (rr.a("web.shop.svc.cluster.local.", 30, "10.0.0.1"),)))
    fp.store(q, out, memo, [], None)
    assert fp.answer(q) is None and not fp.entries
    fp.store(q, out, memo, [], None)
    assert fp.answer(q) is not None


def test_a_full_table_stores_the_new_reply_under_its_own_query() -> None:
    fp = FastPath(max_entries=10, clock=Clock())
    memo = Memo()
    memo.allow()
    queries = [make_query(f"n{i}.shop.svc.cluster.local.", "A").to_wire() for i in range(11)]
    for q in queries:
        for _ in range(2):  # asked twice: stored
            fp.store(q, q, memo, [], None)
    # The eleventh made room by dropping the oldest; it is stored under its own bytes.
    assert fp.answer(queries[-1]) is not None
    assert fp.answer(queries[0]) is None
    assert len(fp.entries) <= 10


def test_names_asked_once_take_no_slot_and_do_not_push_out_the_hot_set() -> None:
    fp = FastPath(max_entries=100, clock=Clock())
    memo = Memo()
    memo.allow()
    hot = _store(fp, memo, (rr.a("web.shop.svc.cluster.local.", 30, "10.0.0.1"),))
    for i in range(admission.PER_GENERATION * 3):  # a flood of names asked once
        q = make_query(f"x{i}.shop.svc.cluster.local.", "A").to_wire()
        fp.store(q, q, memo, [], None)
    assert list(fp.entries) == [hot[2:]]
    assert fp.answer(hot) is not None
    # What remembers them is bounded: two generations of hashes.
    assert len(fp.doorkeeper) <= 2 * admission.PER_GENERATION


def test_id_is_spliced_and_nothing_else_changes() -> None:
    fp = FastPath(clock=Clock())
    memo = Memo()
    memo.allow()
    q = _store(fp, memo, (rr.a("web.shop.svc.cluster.local.", 30, "10.0.0.1"),))
    other = b"\xbe\xef" + q[2:]
    out = fp.answer(other)
    assert out is not None and out[:2] == b"\xbe\xef"
    msg = dns.message.from_wire(out)
    assert msg.answer[0][0].to_text() == "10.0.0.1" and msg.answer[0].ttl == 30


def test_not_stored_unless_allowed_or_when_denied() -> None:
    fp = FastPath(clock=Clock())
    q = _store(fp, Memo(), (rr.a("web.shop.svc.cluster.local.", 30, "10.0.0.1"),))
    assert fp.answer(q) is None
    memo = Memo()
    memo.allow()
    memo.deny()
    q = _store(fp, memo, (rr.a("web.shop.svc.cluster.local.", 30, "10.0.0.1"),))
    assert fp.answer(q) is None


def test_check_and_deadline_end_an_entry() -> None:
    clock = Clock()
    fp = FastPath(clock=clock)
    valid = [True]
    memo = Memo()
    memo.allow(lambda: valid[0])
    memo.bound(clock.now + 5)
    q = _store(fp, memo, (rr.a("web.shop.svc.cluster.local.", 30, "10.0.0.1"),))
    assert fp.answer(q) is not None
    valid[0] = False
    assert fp.answer(q) is None and not fp.entries
    valid[0] = True
    q = _store(fp, memo, (rr.a("web.shop.svc.cluster.local.", 30, "10.0.0.1"),))
    clock.now += 5
    assert fp.answer(q) is None


def test_ttls_count_down_once_a_second() -> None:
    clock = Clock()
    start = clock.now
    fp = FastPath(clock=clock)
    memo = Memo()
    memo.allow()
    memo.bound(start + 20)
    memo.count_down(clock.now - 3.5, 3)  # stored 3.5 s ago; the reply already shows TTL - 3
    answers = (rr.a("web.shop.svc.cluster.local.", 17, "10.0.0.1"),)
    q = _store(fp, memo, answers)
    ttl = lambda: dns.message.from_wire(fp.answer(q) or b"").answer[0].ttl  # noqa: E731
    assert ttl() == 17
    clock.now += 0.4
    assert ttl() == 17
    clock.now += 0.2  # now 4.1 s after storing
    assert ttl() == 16
    clock.now += 10  # 14.1 s after storing
    assert ttl() == 6
    clock.now = start + 20.1  # past the deadline the cache set
    assert fp.answer(q) is None


def test_address_records_are_shuffled_on_hits() -> None:
    fp = FastPath(clock=Clock())
    memo = Memo()
    memo.allow()
    memo.shuffle = True
    ips = [f"10.0.0.{i}" for i in range(1, 9)]
    q = _store(fp, memo, tuple(rr.a("web.shop.svc.cluster.local.", 30, ip) for ip in ips))
    orders = set()
    for _ in range(50):
        msg = dns.message.from_wire(fp.answer(q) or b"")
        got = [r.to_text() for r in msg.answer[0]]
        assert sorted(got) == sorted(ips)
        orders.add(tuple(msg.to_wire()[-8 * 16 :]))
    assert len(orders) > 1


def test_hit_counts_are_handed_on_in_small_batches_and_exactly_on_flush() -> None:
    """Past FLUSH_EVERY entries with unreported hits, the oldest FLUSH_CHUNK are reported (a
    short pause, not one for all of them); flush() reports the rest, so totals stay exact."""
    fp = FastPath(max_entries=fastpath.FLUSH_EVERY + 100, clock=Clock())
    counted: dict[int, int] = {}
    queries = []
    for i in range(fastpath.FLUSH_EVERY + 1):
        memo = Memo()
        memo.allow()
        memo.on_hit.append(lambda n, i=i: counted.__setitem__(i, counted.get(i, 0) + n))
        q = make_query(f"n{i}.shop.svc.cluster.local.", "A").to_wire()
        fp.store(q, q, memo, [], None)
        fp.store(q, q, memo, [], None)
        queries.append(q)
    for q in queries[:-1]:
        assert fp.answer(q) is not None and fp.answer(q) is not None  # two hits each
    assert counted == {}  # nothing reported while under FLUSH_EVERY pending entries
    assert fp.answer(queries[-1]) is not None  # one more pending entry: the oldest go
    assert counted == {i: 2 for i in range(fastpath.FLUSH_CHUNK)}
    fp.flush()
    assert counted == {**{i: 2 for i in range(fastpath.FLUSH_EVERY)}, fastpath.FLUSH_EVERY: 1}
