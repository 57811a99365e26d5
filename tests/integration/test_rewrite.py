"""`rewrite` over real sockets: the coredns.io blog and AKS examples answering as their docs say
(the client sees the name it asked, with the service's address from a snapshot or the
upstream's answer for the rewritten name), a rewritten name asked again and re-served from the
fast path and the cache with the right question and names, an edns0 option reaching the
upstream, and ttl, rcode and class rules on the wire."""

from __future__ import annotations

from pathlib import Path

import dns.edns
import dns.rcode
import pytest

from tests.support.client import DIG, ask, dig, rrs
from tests.support.ports import free_port
from tests.support.server import Running, running_kdns
from tests.support.upstream import fake_upstream

CORPUS = Path(__file__).parents[1] / "data" / "corefiles"


def snapshot(services: dict[str, str]) -> str:
    """A snapshot of the default namespace holding ClusterIP services (name: address)."""
    items = ["- {apiVersion: v1, kind: Namespace, metadata: {name: default}}"]
    for name, ip in services.items():
        meta = f"{{name: {name}, namespace: default}}"
        spec = f"{{type: ClusterIP, clusterIP: {ip}, ports: [{{port: 80, protocol: TCP}}]}}"
        items.append(f"- {{apiVersion: v1, kind: Service, metadata: {meta}, spec: {spec}}}")
    return "apiVersion: v1\nkind: List\nitems:\n" + "\n".join(items) + "\n"


SNAPSHOT = snapshot({"foo": "10.96.7.7", "bar": "10.96.8.8"})


def blog_corefile(upstream: int) -> str:
    """coredns.io's 'Custom DNS Entries For Kubernetes' Corefile, as published, pointed at a
    snapshot, a fake upstream and free ports."""
    text = (CORPUS / "coredns-blog-custom-dns-rewrite.Corefile").read_text()
    text = text.replace(".:53 {", ".:PORT {\n    bind 127.0.0.1")
    text = text.replace("    health\n", f"    health 127.0.0.1:{free_port()}\n")
    text = text.replace(
        "kubernetes cluster.local 10.0.0.0/24",
        "kubernetes cluster.local 10.0.0.0/24 {\n        snapshot cluster.yaml\n    }",
    )
    assert "forward . /etc/resolv.conf" in text
    return text.replace("forward . /etc/resolv.conf", f"forward . 127.0.0.1:{upstream}")


def aks_corefile(upstream: int) -> str:
    """AKS's coredns-custom `Rewrite DNS` server block, as the docs give it."""
    text = (CORPUS / "aks-custom-rewrite.Corefile").read_text()
    text = text.replace("example.com:53 {", "example.com:PORT {\nbind 127.0.0.1")
    assert "forward . /etc/resolv.conf" in text
    return text.replace("forward . /etc/resolv.conf", f"forward . 127.0.0.1:{upstream}")


def fast_hits(srv: Running) -> int:
    assert srv.app.instance is not None
    return srv.app.instance.dispatchers[("127.0.0.1", srv.port)].fastpath.hits


async def test_blog_example_answers_foo_example_com_with_the_service_address(
    tmp_path: Path,
) -> None:
    (tmp_path / "cluster.yaml").write_text(SNAPSHOT)
    async with fake_upstream() as up:
        up.add("www.example.org.", "A", "93.184.216.34")
        async with running_kdns(blog_corefile(up.port), tmp_path) as srv:
            replies = [await ask(srv.port, "foo.example.com.") for _ in range(4)]
            for msg in replies:
                assert msg.rcode() == dns.rcode.NOERROR
                assert msg.question[0].name.to_text() == "foo.example.com."
                assert rrs(msg) == [("foo.example.com.", "A", "10.96.7.7")]
            # The service's own name still answers as itself, from the same cache.
            own = await ask(srv.port, "foo.default.svc.cluster.local.")
            assert rrs(own) == [("foo.default.svc.cluster.local.", "A", "10.96.7.7")]
            # Other names are not rewritten: they go to the upstream as asked.
            other = await ask(srv.port, "www.example.org.")
            assert rrs(other) == [("www.example.org.", "A", "93.184.216.34")]
            assert [q for q, _, _ in up.received] == ["www.example.org."]


@pytest.mark.skipif(DIG is None, reason="dig is installed by `make test`")
async def test_blog_example_with_dig_shows_no_question_mismatch(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(SNAPSHOT)
    async with fake_upstream() as up, running_kdns(blog_corefile(up.port), tmp_path) as srv:
        for _ in range(2):
            out = await dig(srv.port, "foo.example.com", "A")
            assert "status: NOERROR" in out and "mismatch" not in out
            assert ";foo.example.com.\t\tIN\tA" in out
            assert "foo.example.com.\t" in out.split("ANSWER SECTION:")[1]
            assert "10.96.7.7" in out


async def test_aks_block_asks_the_upstream_the_cluster_name_and_answers_the_asked_one(
    tmp_path: Path,
) -> None:
    async with fake_upstream() as up:
        up.add("web.default.svc.cluster.local.", "A", "10.0.0.5", "10.0.0.6")
        up.add("alias.default.svc.cluster.local.", "CNAME", "web.default.svc.cluster.local.")
        async with running_kdns(aks_corefile(up.port), tmp_path) as srv:
            msg = await ask(srv.port, "web.example.com.")
            assert msg.question[0].name.to_text() == "web.example.com."
            assert sorted(rrs(msg)) == [
                ("web.example.com.", "A", "10.0.0.5"),
                ("web.example.com.", "A", "10.0.0.6"),
            ]
            assert up.received[0][:2] == ("web.default.svc.cluster.local.", "A")
            # `answer name` maps owner names only; a CNAME's target stays the cluster name.
            alias = await ask(srv.port, "alias.example.com.", "CNAME")
            assert rrs(alias) == [("alias.example.com.", "CNAME", "web.default.svc.cluster.local.")]
            # Not matching the regex: passed on unchanged (and the upstream has no such name).
            plain = await ask(srv.port, "example.com.")
            assert plain.rcode() == dns.rcode.NXDOMAIN
            assert up.received[-1][0] == "example.com."


COREFILE_FAST = """\
.:PORT {
    bind 127.0.0.1
    rewrite name regex (.*)\\.corp\\.example {1}.default.svc.cluster.local answer auto
    kubernetes cluster.local {
        snapshot cluster.yaml
    }
}
"""


async def test_a_rewritten_name_asked_again_is_served_from_bytes_with_its_own_question(
    tmp_path: Path,
) -> None:
    (tmp_path / "cluster.yaml").write_text(SNAPSHOT)
    async with running_kdns(COREFILE_FAST, tmp_path) as srv:
        first = await ask(srv.port, "foo.corp.example.")
        assert rrs(first) == [("foo.corp.example.", "A", "10.96.7.7")]
        await ask(srv.port, "foo.corp.example.")  # asked twice: now kept for the fast path
        before = fast_hits(srv)
        again = await ask(srv.port, "foo.corp.example.")
        assert fast_hits(srv) == before + 1, "the third answer should come from stored bytes"
        assert again.question[0].name.to_text() == "foo.corp.example."
        assert rrs(again) == rrs(first) and again.flags == first.flags
        # Another name rewritten to another service, and the target name asked as itself:
        # neither is confused with the stored reply.
        for _ in range(3):
            bar = await ask(srv.port, "bar.corp.example.")
            assert rrs(bar) == [("bar.corp.example.", "A", "10.96.8.8")]
            own = await ask(srv.port, "foo.default.svc.cluster.local.")
            assert rrs(own) == [("foo.default.svc.cluster.local.", "A", "10.96.7.7")]
        # Letter case is the client's in the question; the mapped-back owner is lower case.
        upper = await ask(srv.port, "FOO.Corp.Example.")
        assert upper.question[0].name.to_text() == "FOO.Corp.Example."
        assert rrs(upper) == [("foo.corp.example.", "A", "10.96.7.7")]
        # Not there: NXDOMAIN for the asked name, the SOA of the cluster zone.
        missing = await ask(srv.port, "nope.corp.example.")
        assert missing.rcode() == dns.rcode.NXDOMAIN
        assert missing.question[0].name.to_text() == "nope.corp.example."


async def test_edns0_option_reaches_the_upstream(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        up.add("example.org.", "A", "10.0.0.1")
        corefile = (
            ".:PORT {\n    bind 127.0.0.1\n"
            "    rewrite continue edns0 local set 0xffee {client_ip}\n"
            "    rewrite edns0 local set 0xfffe 0x61626364\n"
            f"    forward . 127.0.0.1:{up.port}\n}}\n"
        )
        async with running_kdns(corefile, tmp_path) as srv:
            for edns in (0, None):  # with and without the client's own OPT record
                msg = await ask(srv.port, "example.org.", edns=edns)
                assert rrs(msg) == [("example.org.", "A", "10.0.0.1")]
                assert msg.edns == (0 if edns == 0 else -1)
                assert not msg.options, "the options are for the upstream, not the client"
                sent = {o.otype: o.to_wire() for o in up.queries[-1].options}
                assert sent == {0xFFEE: bytes([127, 0, 0, 1]), 0xFFFE: b"abcd"}
            # The client's cookie is its own business with this server: not passed on.
            cookie = dns.edns.CookieOption(b"\x01" * 8, b"")
            await ask(srv.port, "example.org.", options=[cookie])
            assert dns.edns.OptionType.COOKIE not in {o.otype for o in up.queries[-1].options}


async def test_ttl_rcode_and_class_rules_on_the_wire(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("10.0.0.1 example.org\n")
    corefile = f"""\
.:PORT {{
    bind 127.0.0.1
    rewrite continue ttl example.org 7
    rewrite rcode exact nothere.example.org SERVFAIL REFUSED
    rewrite class CH IN
    hosts {tmp_path / "hosts"}
}}
"""
    async with running_kdns(corefile, tmp_path) as srv:
        for _ in range(3):
            msg = await ask(srv.port, "example.org.")
            assert rrs(msg) == [("example.org.", "A", "10.0.0.1")]
            assert msg.answer[0].ttl == 7
        # hosts has no SOA to deny a name with: SERVFAIL, turned into REFUSED for this one.
        assert (await ask(srv.port, "nothere.example.org.")).rcode() == dns.rcode.REFUSED
        assert (await ask(srv.port, "other.example.org.")).rcode() == dns.rcode.SERVFAIL
        chaos = await ask(srv.port, "example.org.", qclass="CH")
        assert chaos.question[0].rdclass == 3
        assert rrs(chaos) == [("example.org.", "A", "10.0.0.1")]


async def test_cname_target_rewrite_looks_up_the_new_target(tmp_path: Path) -> None:
    async with fake_upstream() as up:
        up.add("old.cdn.example.", "A", "10.0.0.1")
        up.add("new.cdn.example.", "A", "10.1.1.1")
        corefile = f"""\
.:PORT {{
    bind 127.0.0.1
    rewrite cname exact old.cdn.example. new.cdn.example.
    template IN A corp.example {{
        answer "{{{{ .Name }}}} 60 IN CNAME old.cdn.example."
    }}
    forward . 127.0.0.1:{up.port}
}}
"""
        async with running_kdns(corefile, tmp_path) as srv:
            for _ in range(2):
                msg = await ask(srv.port, "www.corp.example.")
                assert rrs(msg) == [
                    ("www.corp.example.", "CNAME", "new.cdn.example."),
                    ("new.cdn.example.", "A", "10.1.1.1"),
                ]
            assert ("new.cdn.example.", "A") in up.counts


async def test_misuse_is_a_file_line_error_at_start(tmp_path: Path) -> None:
    corefile = ".:PORT {\n    bind 127.0.0.1\n    rewrite name regex (.*\\.x {1}.y\n}\n"
    with pytest.raises(Exception, match=r"Corefile:3: invalid regex matching pattern"):
        async with running_kdns(corefile, tmp_path):
            pass
