"""The messages of an outgoing zone transfer (RFC 5936): a zone's records split over replies.

A transfer answer can be far larger than the 65535 bytes one DNS message holds over TCP, so its
records go out in consecutive messages, each with the query's ID and question and a part of the
answer, in order (the first starts with the SOA, the last ends with it). A message holds at most
500 records, as CoreDNS's transfer plugin batches them, and never more than fits in one message.
"""

from __future__ import annotations

from kdns.dns import wire
from kdns.dns.message import Reply, Request
from kdns.dns.records import AXFR, IXFR, RR

TYPES = (AXFR, IXFR)
RECORDS_PER_MESSAGE = 500
# Below 65535 with room for the header, the question and an OPT record with options.
BYTES_PER_MESSAGE = 64000


def _size(record: RR) -> int:
    # Uncompressed size: an upper bound of what the record adds to a message.
    return len(record.name) + 2 + 10 + len(record.rdata)


def batches(records: tuple[RR, ...]) -> list[tuple[RR, ...]]:
    """`records` cut into runs that each fit one message."""
    out: list[tuple[RR, ...]] = []
    start = used = 0
    for i, record in enumerate(records):
        size = _size(record)
        if i > start and (i - start >= RECORDS_PER_MESSAGE or used + size > BYTES_PER_MESSAGE):
            out.append(records[start:i])
            start, used = i, 0
        used += size
    if start < len(records) or not out:
        out.append(records[start:])
    return out


def messages(request: Request, reply: Reply) -> list[bytes]:
    """Wire form of a transfer `reply`, one message per batch of its answer records."""
    return [
        wire.encode(request, reply.with_records(batch, (), ())) for batch in batches(reply.answer)
    ]
