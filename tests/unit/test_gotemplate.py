"""The Go-template subset `template` reads: what it renders as Go's text/template would, and what
it refuses when the Corefile is read or fails on when a query runs."""

from __future__ import annotations

import pytest

from kdns import gotemplate
from kdns.dns import rrtext
from kdns.dns.records import SOA, rdata_text
from kdns.gotemplate import Data, TemplateError

DATA = Data(
    {
        "Name": "ip-10-1-2-3.example.",
        "Zone": "example.",
        "Class": "IN",
        "Match": ["ip-10-1-2-3.example.", "0a"],
        "Group": {"0": "ip-10-1-2-3.example.", "b": "7b", "a": ""},
        "Question": Data(
            {"Name": "Ip-10-1-2-3.example.", "Qtype": 1}, ";Ip-10-1-2-3.example.\tIN\t A"
        ),
        "Meta": lambda key: "",
    }
)


@pytest.mark.parametrize(
    ("source", "want"),
    [
        ("{{ .Name }} 60 IN A 1.2.3.4", "ip-10-1-2-3.example. 60 IN A 1.2.3.4"),
        ("{{.Zone}}", "example."),
        ("{{ index .Match 1 }}", "0a"),
        ('{{ index .Group "b" }}', "7b"),
        ("{{ .Group.b }}|{{ .Group.a }}|{{ .Group.zz }}", "7b||<no value>"),
        ('{{ index .Group "zz" }}', ""),  # index gives the zero value of a missing key
        ("{{ parseInt .Group.b 16 8 }}", "123"),
        ("{{ parseInt (index .Match 1) 16 8 }}", "10"),
        ("{{ 1 | index .Match }}", "0a"),  # a pipe: the value becomes the last argument
        ("{{ 16 }}", "16"),
        ('{{ "a\\tb" }}{{ `raw\\n` }}', "a\tbraw\\n"),
        ("a  {{- .Class -}}  b", "aINb"),
        ("x{{/* a comment */}}y", "xy"),
        (
            "{{ .Question.Name }} {{ .Question }}",
            "Ip-10-1-2-3.example. ;Ip-10-1-2-3.example.\tIN\t A",
        ),
        ('{{ .Meta "kubernetes/client-namespace" }}', ""),
        ("{{ .Match }}", "[ip-10-1-2-3.example. 0a]"),
        ("{{ .Group }}", "map[0:ip-10-1-2-3.example. a: b:7b]"),
    ],
)
def test_renders_as_go_does(source: str, want: str) -> None:
    assert gotemplate.parse(source).render(DATA) == want


@pytest.mark.parametrize(
    "source",
    [
        "{{",
        "{{ }}",
        "{{ if .Name }}x{{ end }}",
        "{{ range .Match }}{{ . }}{{ end }}",
        "{{ $x := .Name }}",
        '{{ printf "%s" .Name }}',
        "{{ (index .Match 1 }}",
        "{{ .Name ) }}",
        '{{ "\\q" }}',
        "{{/* open",
    ],
)
def test_refuses_what_is_not_the_documented_subset(source: str) -> None:
    with pytest.raises(TemplateError):
        gotemplate.parse(source)


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("{{ .Grup.d }}", "can't evaluate field Grup"),  # CoreDNS's setup table has this typo
        ("{{ index .Match 5 }}", "index out of range: 5"),
        ("{{ parseInt .Group.b 10 8 }}", "invalid syntax"),
        ('{{ parseInt "300" 10 8 }}', "value out of range"),
        ('{{ parseInt "1" 1 8 }}', "invalid base 1"),
        ("{{ parseInt .Name }}", "want 3 got 1"),
        ("{{ .Name 1 }}", "not a method"),
    ],
)
def test_fails_at_run_time_as_go_does(source: str, why: str) -> None:
    tmpl = gotemplate.parse(source)
    with pytest.raises(TemplateError, match=why):
        tmpl.render(DATA)


def test_knows_which_fields_it_reads() -> None:
    assert gotemplate.parse("{{ .Remote }} {{ index .Group.a }}").fields == {"Remote", "Group"}


def test_output_is_bounded() -> None:
    data = Data({"Name": "x" * 40000})
    with pytest.raises(TemplateError, match="output longer"):
        gotemplate.parse("{{ .Name }}{{ .Name }}").render(data)


def test_records_from_text_as_miekg_reads_them() -> None:
    soa = rrtext.parse(
        "example.com 60 IN SOA ns.example.com hostmaster.example.com (1 60 60 60 60)"
    )
    assert (soa.name, soa.rtype, soa.ttl) == ("example.com.", SOA, 60)
    assert rdata_text(soa) == "ns.example.com. hostmaster.example.com. 1 60 60 60 60"
    assert rrtext.parse("a.example. A 10.0.0.1").ttl == 3600  # miekg/dns's default TTL
    for bad in ("a.example. 60 IN A 300.1.1.1", "a.example. 60 IN FOO 1", "", "a.\nb. A 1.1.1.1"):
        with pytest.raises(ValueError):
            rrtext.parse(bad)
