"""Corefile syntax and meaning: every syntax feature, and every error with its file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdns import corefile
from kdns.config import from_text, load
from kdns.corefile import CorefileError

KUBEADM = """\
.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def test_server_block_keys_and_directives() -> None:
    blocks = corefile.parse(KUBEADM, "Corefile")
    assert [k.text for k in blocks[0].keys] == [".:53"]
    names = [d.name for d in blocks[0].directives]
    assert names[:3] == ["errors", "health", "ready"]
    health = blocks[0].directives[1]
    assert health.block is not None and health.block[0].name == "lameduck"
    assert health.block[0].values == ["5s"] and health.block[0].line == 4
    k8s = blocks[0].directives[3]
    assert k8s.values == ["cluster.local", "in-addr.arpa", "ip6.arpa"] and k8s.line == 7


def test_several_keys_commas_and_continued_lines() -> None:
    blocks = corefile.parse("a.local:1053, b.local:1053,\n  c.local:1053 {\n errors\n}\n")
    assert [k.text for k in blocks[0].keys] == ["a.local:1053", "b.local:1053", "c.local:1053"]


def test_multiple_blocks_and_scheme() -> None:
    text = "dns://.:53 {\n errors\n}\ncluster.local:1053 {\n errors\n}\n"
    blocks = corefile.parse(text)
    assert [b.keys[0].text for b in blocks] == ["dns://.:53", "cluster.local:1053"]
    assert blocks[1].line == 4


def test_quoted_tokens_and_escapes() -> None:
    d = corefile.parse('. {\n  x "a b" "say \\"hi\\"" plain\n}\n')[0].directives[0]
    assert d.values == ["a b", 'say "hi"', "plain"]
    assert d.args[0].quoted and not d.args[2].quoted


def test_comments_are_ignored() -> None:
    d = corefile.parse(". { # block\n  errors # trailing\n  # whole line\n}\n")[0].directives
    assert [x.name for x in d] == ["errors"]


def test_env_substitution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDNS_TEST_PORT", "1053")
    monkeypatch.setenv("KDNS_TEST_TTL", "7")
    blocks = corefile.parse(
        ".:{$KDNS_TEST_PORT} {\n ttl {%KDNS_TEST_TTL%}\n x {$UNSET_VAR:dflt}\n}"
    )
    assert blocks[0].keys[0].text == ".:1053"
    assert blocks[0].directives[0].values == ["7"]
    assert blocks[0].directives[1].values == ["dflt"]


def test_snippets_and_import() -> None:
    text = "(common) {\n  errors\n  cache 30\n}\n.:53 {\n  import common\n  loadbalance\n}\n"
    d = corefile.parse(text)[0].directives
    assert [x.name for x in d] == ["errors", "cache", "loadbalance"]
    assert d[0].line == 2  # a snippet's lines point at where it was written


def test_import_file_relative_to_corefile(tmp_path: Path) -> None:
    (tmp_path / "extra.conf").write_text("errors\n")
    (tmp_path / "Corefile").write_text(".:53 {\n  import extra.conf\n}\n")
    d = corefile.load(tmp_path / "Corefile")[0].directives
    assert d[0].name == "errors" and d[0].file.endswith("extra.conf") and d[0].line == 1


def test_single_block_without_braces() -> None:
    blocks = corefile.parse(".:53\nerrors\nloadbalance\n")
    assert [d.name for d in blocks[0].directives] == ["errors", "loadbalance"]


def test_one_line_block() -> None:
    d = corefile.parse(".:53 {\n health { lameduck 5s }\n}\n")[0].directives[0]
    assert d.block is not None and d.block[0].values == ["5s"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (".:53 {\n  errors\n", 1, "unclosed '{'"),
        ('.:53 {\n  x "open\n}\n', 2, "unterminated quoted string"),
        ("}\n", 1, "unexpected '}'"),
        (".:53 {\n  import nothing\n}\n", 2, "no snippet or file named 'nothing'"),
        ("(s) {\n import s\n}\n.:53 {\n import s\n}\n", 2, "nested too deeply"),
        ("", 1, "no server blocks"),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(CorefileError) as exc:
        corefile.parse(text, "Corefile")
    assert exc.value.line == line
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"Corefile:{line}: ")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("  kubernets cluster.local\n", 2, 'unknown directive "kubernets"'),
        ("  route53 example.org.:Z1\n", 2, 'directive "route53" is not supported yet'),
        ("  rewrite name a\n", 2, "too few arguments for a name rule"),
        ("  kubernetes cluster.local {\n    ttl 99999\n  }\n", 3, "ttl must be between 0 and 3600"),
        ("  kubernetes cluster.local {\n    ttl soon\n  }\n", 3, "ttl must be a whole number"),
        ("  kubernetes {\n    pods maybe\n  }\n", 3, "pods must be disabled, insecure or verified"),
        ("  kubernetes {\n    podz insecure\n  }\n", 3, "unknown property 'podz' for kubernetes"),
        (
            "  kubernetes {\n    multicluster clusterset.local\n  }\n",
            3,
            "is not authoritative for the multicluster zone clusterset.local.",
        ),
        ("  kubernetes {\n    zonal us-west-2a\n  }\n", 3, "zonal takes no arguments"),
        (
            "  kubernetes {\n    zonal\n    noendpoints\n  }\n",
            2,
            "zonal cannot be used with noendpoints",
        ),
        ("  kubernetes {\n    labels a in (\n  }\n", 3, "invalid labels"),
        ("  kubernetes\n  kubernetes\n", 3, "can only be used once per server block"),
        (
            "  kubernetes {\n    namespaces a\n    namespace_labels t=a\n  }\n",
            2,
            "namespaces and namespace_labels cannot both be set",
        ),
        ("  bind nosuchif0\n", 2, "nor an interface of this host"),
        ("  bind 300.1.1.1\n", 2, "invalid IP address"),
        ("  errors {\n    consolidate 5 x\n  }\n", 3, "needs a unit"),
        ("  errors {\n    consolidate 5m (\n  }\n", 3, "invalid regular expression"),
        ("  errors extra\n", 2, "errors takes no arguments"),
    ],
)
def test_directive_errors_name_the_line(body: str, line: int, message: str) -> None:
    with pytest.raises(CorefileError) as exc:
        from_text(".:53 {\n" + body + "}\n", "conf/Corefile")
    assert str(exc.value).startswith(f"conf/Corefile:{line}: "), str(exc.value)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("tls://.:853", "needs a certificate: add tls CERT KEY [CA]"),
        ("grpc://.:443", "transport grpc:// is not supported yet"),
        (".:99999", "invalid port"),
        (".:http", "invalid port"),
    ],
)
def test_bad_server_keys(key: str, message: str) -> None:
    with pytest.raises(CorefileError) as exc:
        from_text(key + " {\n errors\n}\n")
    assert message in str(exc.value) and exc.value.line == 1


def test_zones_and_ports_from_keys() -> None:
    cfg = from_text("cluster.local:1053 10.0.0.0/24:1053 {\n errors\n}\n:5353 {\n errors\n}\n")
    assert cfg.blocks[0].zones == ("cluster.local.", "0.0.10.in-addr.arpa.")
    assert cfg.blocks[0].port == 1053
    assert cfg.blocks[1].zones == (".",) and cfg.blocks[1].port == 5353


def test_default_port_and_duplicate_zone() -> None:
    assert from_text(". {\n errors\n}\n").blocks[0].port == 53
    with pytest.raises(CorefileError, match="already served"):
        from_text(".:53 {\n errors\n}\n.:53 {\n errors\n}\n")


def test_kubernetes_options_are_read() -> None:
    cfg = from_text(
        ".:53 {\n kubernetes cluster.local in-addr.arpa {\n  pods verified\n  ttl 30\n"
        "  namespaces a b\n  endpoint_pod_names\n  ignore empty_service\n  noendpoints\n"
        "  fallthrough in-addr.arpa\n  labels app=web,tier!=db\n  startup_timeout 2s\n }\n}\n"
    )
    entry = cfg.blocks[0].get("kubernetes")
    assert entry is not None
    k = entry.config
    assert k.options.zones == ("cluster.local.", "in-addr.arpa.")
    assert k.options.pods == "verified" and k.options.ttl == 30
    assert k.options.namespaces == frozenset({"a", "b"})
    assert k.options.endpoint_pod_names and k.options.ignore_empty_service
    assert k.options.noendpoints and k.fallthrough == ("in-addr.arpa.",)
    assert k.options.labels is not None and k.options.labels.matches([("app", "web")])
    assert not k.options.labels.matches([("app", "web"), ("tier", "db")])
    assert k.startup_timeout == 2.0


def test_kubernetes_defaults_to_block_zones() -> None:
    cfg = from_text("cluster.local:53 {\n kubernetes\n}\n")
    entry = cfg.blocks[0].get("kubernetes")
    assert entry is not None and entry.config.options.zones == ("cluster.local.",)
    assert entry.config.options.ttl == 5 and entry.config.options.pods == "disabled"


def test_load_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorefileError, match="cannot read Corefile"):
        load(tmp_path / "nope")


def test_bundled_corefile_is_valid() -> None:
    cfg = load(Path(__file__).parents[2] / "Corefile")
    assert cfg.blocks[0].port == 1053


def test_parenthesised_arguments_are_not_snippets() -> None:
    # Only an unquoted `(name)` starting a line outside every block defines a snippet.
    d = corefile.parse('.:53 {\n  x "(0)"\n  y (1)\n  (2) z\n}\n')[0].directives
    assert [(x.name, x.values) for x in d] == [("x", ["(0)"]), ("y", ["(1)"]), ("(2)", ["z"])]


def test_unix_key_is_checked_but_not_served(caplog: pytest.LogCaptureFixture) -> None:
    """CoreDNS 1.14 reads `unix://` as a transport it makes no server for: the Corefile loads,
    that block serves nothing, and its directives are still checked."""
    cfg = from_text("unix:// {\n loop\n}\n.:1053 {\n errors\n}\n")
    assert [(b.zones, b.port) for b in cfg.blocks] == [((".",), 1053)]
    assert "nothing is served" in caplog.text
    with pytest.raises(CorefileError) as exc:
        from_text("unix:// {\n loop here\n}\n")
    assert exc.value.line == 2
