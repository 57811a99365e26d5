"""One authoritative zone held in memory, and the lookup CoreDNS's `file` plugin does in it.

`Zone.of(origin, records)` indexes the records of a zone file; `zone.lookup(name, qtype)` answers
a question the way coredns/coredns plugin/file/lookup.go does:

- The name is walked from the origin down, label by label. A name on the way that holds NS
  records (below the apex) is a delegation: a referral with the NS records in authority and
  their addresses (glue) in additional, not authoritative.
- A name that exists answers its records of the type, with the apex NS records in authority
  (and A/AAAA of in-zone MX and SRV targets in additional); a CNAME there is followed through
  the zone (at most 8 links), and a target outside the zone is left for the caller to resolve.
  A name that exists without that type is NODATA: the SOA in authority.
- A name that does not exist is answered from the wildcard `*.<parent>` found deepest on the
  way down (its records renamed to the question), else NXDOMAIN with the SOA in authority;
  an empty non-terminal (a name with nothing but names below it) is NODATA instead.

Pure: no I/O; a Zone is immutable, so a reload swaps in a new one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from kdns.dns import names
from kdns.dns import records as rr
from kdns.dns.records import RR

MAX_CNAME_CHAIN = 8  # CoreDNS's file plugin gives up following CNAMEs after 8 links

Node = Mapping[int, tuple[RR, ...]]  # records of one name, by type


class Result(enum.Enum):
    SUCCESS = "success"  # NOERROR, authoritative (also a wildcard's or an ENT's NODATA)
    NODATA = "nodata"  # NOERROR, authoritative, SOA in authority
    NXDOMAIN = "nxdomain"
    DELEGATION = "delegation"  # NOERROR, not authoritative: a referral


@dataclass(frozen=True, slots=True)
class Found:
    result: Result
    answer: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()
    additional: tuple[RR, ...] = ()
    # A CNAME target outside the zone: the caller resolves it and appends what it finds.
    chase: str | None = None


def _name_of(data: bytes, off: int = 0) -> str:
    labels: list[str] = []
    while off < len(data) and data[off]:
        n = data[off]
        labels.append(names.label_from_wire(data[off + 1 : off + 1 + n]))
        off += 1 + n
    return names.normalize(".".join(labels) + ".") if labels else "."


def target(record: RR) -> str:
    """The name a CNAME, NS, MX or SRV record points to (lower case)."""
    if record.rtype == rr.MX:
        return _name_of(record.rdata, 2)
    if record.rtype == rr.SRV:
        return _name_of(record.rdata, 6)
    return _name_of(record.rdata)


def serial_of(soa: RR) -> int:
    """The serial number of an SOA record."""
    off = _skip_name(soa.rdata, 0)
    off = _skip_name(soa.rdata, off)
    return int.from_bytes(soa.rdata[off : off + 4], "big")


def _skip_name(data: bytes, off: int) -> int:
    while off < len(data) and data[off]:
        off += 1 + data[off]
    return off + 1


def _canonical(name: str) -> tuple[str, ...]:
    # RFC 4034 canonical order: compare labels from the right.
    return tuple(reversed(names.split(name)))


@dataclass(frozen=True, slots=True)
class Zone:
    origin: str  # lower case, absolute
    soa: RR
    ns: tuple[RR, ...]  # the apex NS records
    nodes: Mapping[str, Node]  # every other record, by lower-case owner name
    parents: frozenset[str]  # names that have names below them (to tell ENTs from NXDOMAIN)
    count: int  # records in the zone

    @classmethod
    def of(cls, origin: str, records: Iterable[RR]) -> Zone:
        """Index a zone's records; the first SOA is the zone's, as CoreDNS keeps one."""
        origin = names.normalize(origin)
        soa: RR | None = None
        ns: list[RR] = []
        nodes: dict[str, dict[int, list[RR]]] = {}
        count = 0
        for record in records:
            owner = names.normalize(record.name)
            record = RR(owner, record.rtype, record.ttl, record.rdata, record.rclass)
            if record.rtype == rr.SOA:
                if soa is None:
                    soa = record
                    count += 1
                continue
            count += 1
            if record.rtype == rr.NS and owner == origin:
                ns.append(record)
                continue
            nodes.setdefault(owner, {}).setdefault(record.rtype, []).append(record)
        if soa is None:
            raise ValueError(f"no SOA record for origin {origin}")
        parents: set[str] = set()
        for owner in nodes:
            labels = names.split(owner)
            for i in range(1, len(labels)):
                parents.add(".".join(labels[i:]) + ".")
        frozen = {
            owner: MappingProxyType({t: tuple(v) for t, v in node.items()})
            for owner, node in nodes.items()
        }
        return cls(origin, soa, tuple(ns), MappingProxyType(frozen), frozenset(parents), count)

    @property
    def serial(self) -> int:
        return serial_of(self.soa)

    def transfer(self) -> tuple[RR, ...]:
        """Every record for a zone transfer: the SOA, the apex NS, the other names in canonical
        order, and the SOA again (RFC 5936)."""
        body: list[RR] = [self.soa, *self.ns]
        for owner in sorted(self.nodes, key=_canonical):
            for rtype in sorted(self.nodes[owner]):
                body.extend(self.nodes[owner][rtype])
        body.append(self.soa)
        return tuple(body)

    def lookup(self, name: str, qtype: int) -> Found:
        """Answer `qtype` for `name` (lower case, absolute, inside the zone)."""
        origin = self.origin
        if name == origin and qtype == rr.SOA:
            return Found(Result.SUCCESS, (self.soa,), self.ns)
        if name == origin and qtype == rr.NS:
            return Found(Result.SUCCESS, self.ns, (), self._glue(self.ns))
        labels = names.split(name)
        depth = len(names.split(origin))
        wildcard: Node | None = None
        node: Node | None = None
        for i in range(depth, len(labels) + 1):
            part = ".".join(labels[len(labels) - i :]) + "." if i else "."
            node = self.nodes.get(part)
            if node is None:
                wild = "*." + part.split(".", 1)[1] if i else None
                found = self.nodes.get(wild) if wild is not None else None
                if found is not None:
                    wildcard = found
                continue
            dname = node.get(rr.DNAME)
            if dname and part != name:
                return self._substitute(dname, name, part, qtype)
            delegated = node.get(rr.NS)
            if delegated and part != origin:
                if qtype == rr.DS and part == name:
                    continue  # the parent side answers DS for a delegation point
                return Found(Result.DELEGATION, (), delegated, self._glue(delegated))
        if node is not None:
            return self._answer(node, name, qtype, rename=False)
        if wildcard is not None:
            return self._answer(wildcard, name, qtype, rename=True)
        if name in self.parents:
            return Found(Result.NODATA, (), (self.soa,))
        return Found(Result.NXDOMAIN, (), (self.soa,))

    def _answer(self, node: Node, name: str, qtype: int, *, rename: bool) -> Found:
        cname = node.get(rr.CNAME)
        if cname and qtype != rr.CNAME:
            return self._follow(_renamed(cname, name) if rename else cname, qtype)
        found = node.get(qtype, ())
        if not found:
            # A wildcard's NODATA is a success in CoreDNS (same reply, other label).
            return Found(Result.SUCCESS if rename else Result.NODATA, (), (self.soa,))
        if rename:
            return Found(Result.SUCCESS, _renamed(found, name), self.ns)
        return Found(Result.SUCCESS, found, self.ns, self._additional(found))

    def _substitute(self, dname: tuple[RR, ...], name: str, owner: str, qtype: int) -> Found:
        """A name below a DNAME: the DNAME, a CNAME synthesised to the substituted name
        (RFC 6672), and what that name has, as CoreDNS answers."""
        stem = name[: len(name) - len(owner)]
        try:
            cname = rr.cname(name, dname[0].ttl, stem + target(dname[0]))
        except ValueError:  # the substituted name is too long (RFC 6672 says YXDOMAIN)
            return Found(Result.NXDOMAIN, (), (self.soa,))
        found = self._follow((cname,), qtype)
        return Found(found.result, dname[:1] + found.answer, found.authority, (), found.chase)

    def _follow(self, chain: tuple[RR, ...], qtype: int) -> Found:
        answer = list(chain)
        for _ in range(MAX_CNAME_CHAIN + 1):
            name = target(answer[-1])
            node = self.nodes.get(name)
            if node is None:
                return Found(Result.SUCCESS, tuple(answer), self.ns, chase=name)
            more = node.get(rr.CNAME)
            if not more:
                answer.extend(node.get(qtype, ()))
                break
            answer.extend(more)
        return Found(Result.SUCCESS, tuple(answer), self.ns)

    def _glue(self, ns: tuple[RR, ...]) -> tuple[RR, ...]:
        out: list[RR] = []
        for record in ns:
            node = self.nodes.get(target(record))
            if node is not None:
                out.extend(node.get(rr.A, ()))
                out.extend(node.get(rr.AAAA, ()))
        return tuple(out)

    def _additional(self, answer: tuple[RR, ...]) -> tuple[RR, ...]:
        out: list[RR] = []
        seen: set[str] = set()
        for record in answer:
            if record.rtype not in (rr.MX, rr.SRV):
                continue
            name = target(record)
            if name in seen:
                continue  # one target named twice gets its addresses once
            seen.add(name)
            node = self.nodes.get(name) if names.is_subdomain(name, self.origin) else None
            if node is not None:
                out.extend(node.get(rr.A, ()))
                out.extend(node.get(rr.AAAA, ()))
        return tuple(out)


def _renamed(found: tuple[RR, ...], name: str) -> tuple[RR, ...]:
    return tuple(RR(name, r.rtype, r.ttl, r.rdata, r.rclass) for r in found)
