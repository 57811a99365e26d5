"""`template CLASS TYPE [ZONE...] { match; answer; additional; authority; rcode; ederror;
fallthrough; upstream }`: replies written from the question, as CoreDNS's `template` plugin.

Templates are tried in Corefile order. One whose zone, class and type fit the question and one of
whose `match` regexes (default `.*`, searched in the lower-cased name) matches writes the reply:
`rcode` (default NOERROR), AA, and each section's records rendered from Go-template text (the
subset kdns.gotemplate reads: `.Name`, `.Zone`, `.Class`, `.Type`, `.Match`, `.Group`,
`.Message`, `.Question`, `.Remote`, `.Meta`, `index`, `parseInt`) and read as RFC 1035 text. A
CNAME answered to an A or AAAA question is followed through the whole server. When no regex
matches, `fallthrough [ZONES]` tries the next template and then the next plugin; without it the
reply is SERVFAIL. A template that fails on a query is a SERVFAIL, counted by section and text.
Replies that read neither `.Remote` nor `.Message` may be re-served from the fast path.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from dnslib import CLASS, QTYPE

from kdns import gotemplate, metrics
from kdns.corefile import Directive
from kdns.dns import names, rrtext
from kdns.dns.message import NOERROR, RCODE_NAMES, SERVFAIL, EdnsOption, Reply, Request
from kdns.dns.records import AAAA, ANY, CNAME, RR, A, rdata_text
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec
from kdns.plugins.dns64 import ede

log = logging.getLogger("kdns.template")

CLASSES = {"IN": 1, "CS": 2, "CH": 3, "HS": 4, "NONE": 254, "ANY": 255}
CLASS_NAMES = {v: k for k, v in CLASSES.items()}
RCODES = {name: code for code, name in RCODE_NAMES.items() if 0 <= code <= 10}
SECTIONS = ("answer", "additional", "authority")
PROPERTIES = ("match", *SECTIONS, "rcode", "ederror", "fallthrough", "upstream")
# Fields whose value differs between two clients asking the same question.
PER_CLIENT = frozenset(["Remote", "Message"])
_REGEX_LOOKING = re.compile(r"[()\[\]<>?*+^$|\\{}]")


@dataclass(frozen=True, slots=True)
class TemplateConfig:
    qclass: int
    qtype: int
    zones: tuple[str, ...]
    regexes: tuple[re.Pattern[str], ...]
    sections: dict[str, tuple[gotemplate.Template, ...]] = field(default_factory=dict)
    rcode: int = NOERROR
    ederror: EdnsOption | None = None
    fallthrough: tuple[str, ...] | None = None

    @property
    def per_client(self) -> bool:
        return any(t.fields & PER_CLIENT for ts in self.sections.values() for t in ts)


def _type(text: str) -> int | None:
    try:
        return int(QTYPE.reverse[text]) if text == text.upper() else None
    except KeyError:
        return None


def parse(d: Directive, block: BlockInfo) -> tuple[TemplateConfig, ...]:
    if len(d.args) < 2:
        raise d.error("wrong number of arguments for template: usage: template CLASS TYPE [ZONE]")
    qclass = CLASSES.get(d.args[0].text)
    if qclass is None:
        raise d.args[0].error(f"invalid query class {d.args[0].text} (IN, CH, ANY, ...)")
    qtype = _type(d.args[1].text)
    if qtype is None:
        raise d.args[1].error(f"invalid query type {d.args[1].text} (A, PTR, ANY, ...)")
    for tok in d.args[2:]:
        if _REGEX_LOOKING.search(tok.text):
            raise tok.error(f"zone {tok.text!r} looks like a regular expression: use match REGEX")
    zones = parsing.zones(d.args[2:], block.zones)
    if d.block is not None and not d.block:
        raise d.error("template block is empty")
    regexes: list[re.Pattern[str]] = []
    sections: dict[str, list[gotemplate.Template]] = {}
    rcode = NOERROR
    ederror: EdnsOption | None = None
    fallthrough: tuple[str, ...] | None = None
    for sub in d.block or ():
        parsing.no_block(sub)
        if sub.name == "match":
            if not sub.args:
                raise sub.error("match needs at least one REGEX")
            for tok in sub.args:
                try:
                    regexes.append(re.compile(tok.text))
                except re.error as exc:
                    raise tok.error(f"could not parse regex: {tok.text}, {exc}") from None
        elif sub.name in SECTIONS:
            if not sub.args:
                raise sub.error(f"{sub.name} needs at least one RR template")
            for tok in sub.args:
                try:
                    sections.setdefault(sub.name, []).append(gotemplate.parse(tok.text))
                except gotemplate.TemplateError as exc:
                    raise tok.error(f"could not compile template: {exc}") from None
        elif sub.name == "rcode":
            parsing.arg_count(sub, 1, 1, "rcode CODE")
            if sub.args[0].text not in RCODES:
                raise sub.args[0].error(f"unknown rcode {sub.args[0].text} ({', '.join(RCODES)})")
            rcode = RCODES[sub.args[0].text]
        elif sub.name == "ederror":
            parsing.arg_count(sub, 1, 2, "ederror EXTENDED_ERROR_CODE [EXTRA_REASON]")
            code = parsing.integer(sub.args[0], 0, 24, "extended error code")
            ederror = ede(code, sub.args[1].text if len(sub.args) > 1 else "")
        elif sub.name == "fallthrough":
            fallthrough = parsing.zones(sub.args, ())
        elif sub.name == "upstream":
            pass  # CoreDNS: "remove soon"; CNAME targets are always looked up
        else:
            raise parsing.unknown_property("template", sub, PROPERTIES)
    return (
        TemplateConfig(
            qclass,
            qtype,
            zones,
            tuple(regexes) or (re.compile(".*"),),
            {k: tuple(v) for k, v in sections.items()},
            rcode,
            ederror,
            fallthrough,
        ),
    )


def merge(first: tuple[TemplateConfig, ...], later: tuple[TemplateConfig, ...]) -> Any:
    return first + later  # one plugin, its templates in Corefile order


def _class_name(qclass: int) -> str:
    return CLASS_NAMES.get(qclass) or str(CLASS.get(qclass))


class TemplatePlugin:
    name = "template"

    def __init__(self, templates: tuple[TemplateConfig, ...], ctx: BuildContext) -> None:
        self.templates = templates
        self.zones = tuple(dict.fromkeys(z for t in templates for z in t.zones))
        self._lookup = ctx.lookup
        self._server = ctx.server
        labels = ("server", "zone", "view", "class", "type")
        self._matches = metrics.counter(
            ctx.registry,
            "coredns_template_matches_total",
            "Counter of template regex matches.",
            labels,
        )
        self._failures = {
            kind: metrics.counter(ctx.registry, name, doc, (*labels, "section", "template"))
            for kind, name, doc in (
                (
                    "template",
                    "coredns_template_template_failures_total",
                    "Counter of go template failures.",
                ),
                ("rr", "coredns_template_rr_failures_total", "Counter of mis-templated RRs."),
            )
        }

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        name = request.name
        if names.longest_zone(name, self.zones) is None:
            return await call_next(request)
        for t in self.templates:
            zone = names.longest_zone(name, t.zones)
            if zone is None:
                continue
            if ANY not in (t.qclass, request.qclass) and request.qclass != t.qclass:
                continue
            if ANY not in (t.qtype, request.qtype) and request.qtype != t.qtype:
                continue
            found = next((m for m in (r.search(name) for r in t.regexes) if m is not None), None)
            if found is None:
                ft = t.fallthrough
                if ft is not None and (not ft or names.longest_zone(name, ft) is not None):
                    continue
                return Reply(rcode=SERVFAIL, plugin=self.name)
            return await self._answer(t, zone, found, request)
        return await call_next(request)

    async def _answer(
        self, t: TemplateConfig, zone: str, found: re.Match[str], request: Request
    ) -> Reply:
        qclass = request.qclass if request.qclass != ANY else t.qclass
        qtype = request.qtype if request.qtype != ANY else t.qtype
        cls, typ = _class_name(qclass), str(QTYPE.get(qtype))
        self._matches.labels(self._server, zone, "", cls, typ).inc()
        if t.rcode == SERVFAIL:
            return Reply(rcode=SERVFAIL, plugin=self.name)
        data = _data(request, zone, found, cls, typ)
        out: dict[str, list[RR]] = {s: [] for s in SECTIONS}
        replay = memo.get()
        for section in SECTIONS:
            for tmpl in t.sections.get(section, ()):
                labels = (self._server, zone, "", cls, typ, section, tmpl.source)
                try:
                    text = tmpl.render(data)
                except gotemplate.TemplateError as exc:
                    self._failures["template"].labels(*labels).inc()
                    return self._failed(f"template: {section} {tmpl.source!r}: {exc}")
                try:
                    rec = rrtext.parse(text)
                except ValueError as exc:
                    self._failures["rr"].labels(*labels).inc()
                    return self._failed(f"template: {section} {tmpl.source!r}: {exc}")
                out[section].append(rec)
                if section == "answer" and rec.rtype == CNAME and request.qtype in (A, AAAA):
                    if replay is not None:
                        replay.deny()  # the target's records have their own lifetime
                    out[section].extend(await self._follow(request, rdata_text(rec)))
        if replay is not None:
            if t.per_client:
                replay.deny()
            else:
                replay.allow()
                replay.on_hit.append(self._matches.labels(self._server, zone, "", cls, typ).inc)
        return Reply(
            t.rcode,
            tuple(out["answer"]),
            tuple(out["authority"]),
            tuple(out["additional"]),
            aa=True,
            plugin=self.name,
            options=(t.ederror,) if t.ederror is not None else (),
        )

    def _failed(self, why: str) -> Reply:
        memo.deny()
        return Reply(rcode=SERVFAIL, plugin=self.name, error=why)

    async def _follow(self, request: Request, target: str) -> tuple[RR, ...]:
        """The target's records through the whole server (CoreDNS's upstream.Lookup)."""
        try:
            reply = await self._lookup(request.with_question(target))
        except Exception as exc:  # the CNAME alone is still an answer
            log.debug("template: looking up %s failed: %s", target, exc)
            return ()
        return reply.answer


def _data(request: Request, zone: str, found: re.Match[str], cls: str, typ: str) -> gotemplate.Data:
    matches = [found.group(0), *(g or "" for g in found.groups())]
    group = {str(i): m for i, m in enumerate(matches)}
    group.update({k: v or "" for k, v in found.groupdict().items()})
    qclass, qtype = _class_name(request.qclass), str(QTYPE.get(request.qtype))
    question = gotemplate.Data(
        {"Name": request.qname, "Qtype": request.qtype, "Qclass": request.qclass},
        f";{request.qname}\t{qclass}\t {qtype}",
    )
    message = gotemplate.Data(
        {"Id": request.id, "Question": [question]}, f";; opcode: QUERY, id: {request.id}"
    )
    return gotemplate.Data(
        {
            "Zone": zone,
            "Name": request.name,
            "Regex": found.re.pattern,
            "Match": matches,
            "Group": group,
            "Class": cls,
            "Type": typ,
            "Message": message,
            "Question": question,
            "Remote": request.client,
            "Meta": lambda key: "",  # no metadata plugin in kdns
        }
    )


def build(config: tuple[TemplateConfig, ...], ctx: BuildContext) -> TemplatePlugin:
    return TemplatePlugin(config, ctx)


SPEC = PluginSpec("template", parse, build, repeatable=True, merge=merge)
