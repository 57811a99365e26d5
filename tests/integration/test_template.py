"""`template` over real sockets: the examples of CoreDNS's README answering as documented
(dnspython as the client), CNAME targets followed through forward, a template that fails on a
query, and the coredns_template_* metrics."""

from __future__ import annotations

from pathlib import Path

import dns.edns
import dns.flags
import dns.rcode

from tests.support.client import ask, rrs
from tests.support.http import scrape, series
from tests.support.ports import free_port
from tests.support.server import running_kdns
from tests.support.upstream import fake_upstream

CORE = Path(__file__).parents[1] / "data" / "template.Corefile"


def corefile(upstream: int, metrics: int) -> str:
    text = CORE.read_text()
    return text.replace("UPSTREAM", str(upstream)).replace("METRICS", str(metrics))


async def test_readme_examples_answer_as_documented(tmp_path: Path) -> None:
    metrics = free_port()
    async with fake_upstream() as up:
        up.add("google.com.", "A", "142.250.0.1")
        up.add("www.example.com.", "A", "93.184.216.34")
        async with running_kdns(corefile(up.port, metrics), tmp_path) as srv:
            port = srv.port
            a = await ask(port, "web.ip-10-1-2-3.example.", "A")
            assert a.flags & dns.flags.AA
            assert rrs(a) == [("web.ip-10-1-2-3.example.", "A", "10.1.2.3")]
            assert a.answer[0].ttl == 60
            assert rrs(await ask(port, "ip0a7b7c7d.hex.example.", "A"))[0][2] == "10.123.124.125"
            ptr = await ask(port, "3.2.1.10.in-addr.arpa.", "PTR")
            assert rrs(ptr) == [("3.2.1.10.in-addr.arpa.", "PTR", "ip-10-1-2-3.example.")]

            # .invalid: NXDOMAIN with the SOA for negative caching and the extended error.
            nx = await ask(port, "anything.invalid.", "AAAA")
            assert nx.rcode() == dns.rcode.NXDOMAIN
            assert rrs(nx, "authority")[0][:2] == ("invalid.", "SOA")
            (opt,) = [o for o in nx.options if isinstance(o, dns.edns.EDEOption)]
            assert (opt.code, opt.text) == (21, "Blocked according to RFC2606")

            # Search-path completions of an absolute name are denied; the rest fall through.
            bad = await ask(port, "www.example.com.dc1.example.com.", "A")
            assert bad.rcode() == dns.rcode.NXDOMAIN
            assert rrs(bad, "authority")[0][0] == "dc1.example.com."
            assert rrs(await ask(port, "www.example.com.", "A"))[0][2] == "93.184.216.34"

            # A fabricated CNAME, its target's addresses looked up through the server.
            cname = await ask(port, "foogle.com.", "A")
            assert rrs(cname) == [
                ("foogle.com.", "CNAME", "google.com."),
                ("google.com.", "A", "142.250.0.1"),
            ]

            # No regex matched and no fallthrough: SERVFAIL, as the README says.
            assert (await ask(port, "www.foogle.com.", "A")).rcode() == dns.rcode.SERVFAIL

            # .Remote is the client: such answers are never re-served to someone else.
            for source in ("127.0.0.1", "127.0.0.2", "127.0.0.1"):
                txt = await ask(port, "whoami.test.", "TXT", source=source)
                assert rrs(txt)[0][2] == f'"{source}"'

            # A template failing on a query: SERVFAIL, counted with its section and text.
            assert (await ask(port, "broken.test.", "A")).rcode() == dns.rcode.SERVFAIL

            m = await scrape(metrics)
            matches = series(m, "coredns_template_matches_total")
            assert (
                matches[
                    (
                        ("class", "IN"),
                        ("server", f"dns://127.0.0.1:{port}"),
                        ("type", "A"),
                        ("view", ""),
                        ("zone", "example."),
                    )
                ]
                == 1.0
            )
            failures = series(m, "coredns_template_template_failures_total")
            assert [dict(k)["section"] for k in failures] == ["answer"]
            assert dict(next(iter(failures)))["template"].endswith("{{ index .Match 3 }}")
