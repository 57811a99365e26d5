"""The conformance suite's `upstream_stub` as a process: `python -m tests.support.stub_upstream
HOST PORT`.

For tests that need the upstream somewhere the test process cannot listen itself (inside a
network namespace). It serves the stub's records (NXDOMAIN with an SOA for other names), answers
SERVFAIL for every name under `servfail.test.`, prints `ready` once it listens on UDP and TCP,
and runs until its stdin closes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import dns.message
import dns.rcode
import yaml

from tests.support.upstream import FakeUpstream

SUITE = Path(__file__).parents[1] / "conformance" / "conformance.yaml"


class StubUpstream(FakeUpstream):
    def build(self, wire: bytes, proto: str, port: int = 0) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        if query.question and query.question[0].name.to_text().lower().endswith(".servfail.test."):
            self.received.append((query.question[0].name.to_text().lower(), "?", proto))
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.SERVFAIL)
            return resp.to_wire()
        return super().build(wire, proto, port)


def stub_records(up: FakeUpstream) -> None:
    suite = yaml.safe_load(SUITE.read_text())
    for rec in suite["upstream_stub"]["records"]:
        if rec["name"] == "big.interwebs.test.":
            up.add(rec["name"], "A", *[f"198.51.100.{i}" for i in range(1, 61)])
        else:
            up.add(rec["name"], rec["type"], rec["rdata"])


async def main(host: str, port: int) -> None:
    up = StubUpstream(host=host, port=port)
    stub_records(up)
    await up.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    finally:
        await up.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
