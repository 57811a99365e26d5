"""A tiny authoritative DNS server standing in for an upstream resolver, able to misbehave.

In the style of dnspython's tests/nanonameserver.py: it listens on UDP and TCP on loopback,
answers from a record table (NXDOMAIN with an SOA otherwise), counts what it receives, and can be
told to time out, answer SERVFAIL, truncate, or reply with a wrong ID, wrong question or from a
wrong port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from tests.support.ports import free_port


@dataclass
class Behaviour:
    mode: str = "answer"  # answer | drop | servfail | refused | wrong_id | wrong_question |
    #                       wrong_port | truncate_always | truncate_both | spoof_first
    delay: float = 0.0
    # spoof_first: before the real reply, send forgeries (wrong ID, wrong question, wrong
    # source port) that a careful client must ignore.


@dataclass
class FakeUpstream:
    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    ttl: int = 300
    behaviour: Behaviour = field(default_factory=Behaviour)
    port: int = 0
    host: str = "127.0.0.1"
    received: list[tuple[str, str, str]] = field(default_factory=list)  # (qname, qtype, proto)
    peers: list[tuple[int, int]] = field(default_factory=list)  # (message ID, source port)
    sources: list[str] = field(default_factory=list)  # the client address of each query
    queries: list[dns.message.Message] = field(default_factory=list)  # each query, decoded
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def add(self, name: str, rtype: str, *rdata: str) -> None:
        self.records.setdefault((name.lower().rstrip(".") + ".", rtype.upper()), []).extend(rdata)

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        return Counter((q, t) for q, t, _ in self.received)

    def build(self, wire: bytes, proto: str, port: int = 0) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        if not query.question:
            return None
        self.queries.append(query)
        q = query.question[0]
        qname = q.name.to_text().lower()
        qtype = dns.rdatatype.to_text(q.rdtype)
        self.received.append((qname, qtype, proto))
        self.peers.append((query.id, port))
        mode = self.behaviour.mode
        if mode == "drop":
            return None
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.RA
        if mode == "servfail":
            resp.set_rcode(dns.rcode.SERVFAIL)
            return resp.to_wire()
        if mode == "refused":
            resp.set_rcode(dns.rcode.REFUSED)
            return resp.to_wire()
        rdatas = self.records.get((qname, qtype))
        if rdatas:
            rrset = dns.rrset.from_text_list(q.name, self.ttl, "IN", qtype, rdatas)
            resp.answer.append(rrset)
        elif any(name == qname for name, _ in self.records):
            self._soa(resp)
        else:
            resp.set_rcode(dns.rcode.NXDOMAIN)
            self._soa(resp)
        if mode == "wrong_question":
            resp.question = [dns.rrset.RRset(dns.name.from_text("evil.example."), 1, 1)]
            resp.answer = [dns.rrset.from_text("evil.example.", 300, "IN", "A", "6.6.6.6")]
        limit = 65535 if proto == "tcp" else (query.payload if query.edns >= 0 else 512)
        out = resp.to_wire(max_size=65535)
        too_big = proto == "udp" and (len(out) > limit or mode == "truncate_always")
        if too_big or mode == "truncate_both":
            resp.answer = []
            resp.authority = []
            resp.flags |= dns.flags.TC
            out = resp.to_wire()
        if mode == "wrong_id":
            out = struct.pack("!H", (query.id + 1) & 0xFFFF) + out[2:]
        self.answered.set()
        return out

    def forgeries(self, wire: bytes) -> list[bytes]:
        """Replies a spoofer would race in: wrong ID, and right ID with another question."""
        query = dns.message.from_wire(wire)
        bad = dns.message.make_response(query)
        bad.answer.append(dns.rrset.from_text(query.question[0].name, 300, "IN", "A", "6.6.6.6"))
        wrong_id = bad.to_wire()
        wrong_id = struct.pack("!H", (query.id + 1) & 0xFFFF) + wrong_id[2:]
        bad.question = [dns.rrset.RRset(dns.name.from_text("evil.example."), 1, 1)]
        return [wrong_id, bad.to_wire()]

    @staticmethod
    def _soa(resp: dns.message.Message) -> None:
        resp.authority.append(
            dns.rrset.from_text(
                "test.", 60, "IN", "SOA", "ns.test. hostmaster.test. 1 7200 1800 86400 60"
            )
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.port = self.port or free_port(self.host)
        upstream = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                task = asyncio.ensure_future(upstream._udp_reply(self.transport, data, addr))
                upstream._tasks.add(task)
                task.add_done_callback(upstream._tasks.discard)

        transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.host, self.port))
        self._udp = transport  # type: ignore[assignment]
        self._tcp = await asyncio.start_server(self._tcp_conn, self.host, self.port)

    async def _udp_reply(
        self, transport: asyncio.BaseTransport, data: bytes, addr: tuple[str, int]
    ) -> None:
        if self.behaviour.delay:
            await asyncio.sleep(self.behaviour.delay)
        self.sources.append(addr[0])
        out = self.build(data, "udp", addr[1])
        if out is None:
            return
        if self.behaviour.mode == "spoof_first":
            for forged in self.forgeries(data):
                transport.sendto(forged, addr)  # type: ignore[attr-defined]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(out, addr)  # the right answer, but from another port
            # ...and then the genuine reply below.
        if self.behaviour.mode == "wrong_port":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(out, addr)
            return
        transport.sendto(out, addr)  # type: ignore[attr-defined]

    async def _tcp_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                head = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", head)[0])
                if self.behaviour.delay:
                    await asyncio.sleep(self.behaviour.delay)
                self.sources.append(str(peer[0]))
                out = self.build(data, "tcp")
                if out is None:
                    continue
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()


@contextlib.asynccontextmanager
async def fake_upstream(**kw: object) -> AsyncIterator[FakeUpstream]:
    up = FakeUpstream(**kw)  # type: ignore[arg-type]
    await up.start()
    try:
        yield up
    finally:
        await up.stop()
