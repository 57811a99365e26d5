"""dnspython as an independent client for the server under test."""

from __future__ import annotations

import asyncio
import shutil

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype

TIMEOUT = 3.0
DIG = shutil.which("dig")


def make_query(
    qname: str,
    qtype: str | int = "A",
    *,
    edns: int | None = 0,
    payload: int = 1232,
    qclass: str = "IN",
    rd: bool = True,
    options: list[dns.edns.Option] | None = None,
) -> dns.message.QueryMessage:
    q = dns.message.make_query(
        qname,
        dns.rdatatype.from_text(qtype) if isinstance(qtype, str) else qtype,
        rdclass=dns.rdataclass.from_text(qclass),
        use_edns=edns if edns is not None else False,
        payload=payload,
        options=options,
    )
    if not rd:
        q.flags &= ~dns.flags.RD
    return q


async def ask(
    port: int,
    qname: str,
    qtype: str | int = "A",
    *,
    tcp: bool = False,
    host: str = "127.0.0.1",
    source: str | None = None,
    timeout: float = TIMEOUT,
    **kw: object,
) -> dns.message.Message:
    q = make_query(qname, qtype, **kw)  # type: ignore[arg-type]
    if tcp:
        return await dns.asyncquery.tcp(q, host, port=port, timeout=timeout, source=source)
    return await dns.asyncquery.udp(
        q, host, port=port, timeout=timeout, source=source, ignore_trailing=False
    )


def rrs(msg: dns.message.Message, section: str = "answer") -> list[tuple[str, str, str]]:
    """(owner, type, rdata) triples of a section, owner as sent (case kept)."""
    out = []
    for rrset in getattr(msg, section):
        for rd in rrset:
            out.append((rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rd.to_text()))
    return out


async def dig(port: int, *args: str) -> str:
    """dig's output; run without blocking the loop that serves it."""
    assert DIG is not None
    proc = await asyncio.create_subprocess_exec(
        *(DIG, "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(10):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err
    return out.decode()
