"""How a pod's stub resolver walks its search list, and how to tell such a walk's waste.

Pure model, no I/O, used by `kdns diagnose` and the kubernetes plugin's metrics:

- `ResolvConf`: the parts of resolv.conf the walk depends on (`parse_resolv_conf`,
  `pod_resolv_conf` for a ClusterFirst pod; kdns.cluster.poddns has the kubelet's full rules).
- `candidates()`: the names tried, in order, for glibc 2.36 and musl 1.2.3.
- `Walk`: a state machine fed one step's replies at a time (the caller does the asking, live or
  offline); it applies each library's stop rules and ends with a `Result`.
- the advice drawn from a finished walk is in kdns.cluster.advice.
- `expansion()`: whether a name the server answers NXDOMAIN for is a search-list expansion.

The rules come from captures of the real libraries (glibc `getaddrinfo`/`res_search`, musl
`name_from_dns_search`/`name_from_dns`); see docs/diagnose.md. A step is one candidate name and
the query types sent together for it (A and AAAA for `getaddrinfo(AF_UNSPEC)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kdns.dns import names
from kdns.dns import records as rr
from kdns.dns.message import NOERROR, NXDOMAIN, SERVFAIL, rcode_name

GLIBC = "glibc"
MUSL = "musl"
RESOLVERS = (GLIBC, MUSL)
MAX_NDOTS = 15  # both libraries clamp ndots to 15 (RES_MAXNDOTS)
DEFAULT_NDOTS = 1
KUBELET_NDOTS = 5
TIMEOUT = None  # the rcode of a step that got no reply


class ResolvConfError(ValueError):
    """A resolv.conf line that cannot be understood (message names the line)."""


@dataclass(frozen=True, slots=True)
class ResolvConf:
    search: tuple[str, ...] = ()  # absolute names (trailing dot), in order
    ndots: int = DEFAULT_NDOTS
    attempts: int = 2
    timeout: int = 5
    nameservers: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # every option as written (single-request, use-vc, ...)

    def has_option(self, name: str) -> bool:
        return any(o == name or o.startswith(name + ":") for o in self.options)

    def text(self) -> str:
        lines = [f"nameserver {ns}" for ns in self.nameservers]
        if self.search:
            lines.append("search " + " ".join(d.rstrip(".") or "." for d in self.search))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"


def _clamped(value: str, where: str, high: int) -> int:
    if not (value.isascii() and value.isdigit()):
        raise ResolvConfError(f"{where}: expected a number, got {value!r}")
    return min(int(value), high)


def resolv_lines(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """Each setting of a resolv.conf as (line number, keyword, arguments), without comments
    (`#` or `;` to the end of the line) and blank lines. Every resolv.conf reader of kdns
    (search walks, forward's upstream files, autopath's own search list) reads through this;
    the kubelet's reading differs and is kdns.cluster.poddns's."""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if line:
            key, *args = line.split()
            yield lineno, key, args


def parse_resolv_conf(text: str, file: str = "resolv.conf") -> ResolvConf:
    """Read resolv.conf as both libraries do: the last `search`/`domain` line wins."""
    search: tuple[str, ...] = ()
    nameservers: list[str] = []
    options: list[str] = []
    ndots, attempts, timeout = DEFAULT_NDOTS, 2, 5
    for lineno, key, args in resolv_lines(text):
        where = f"{file}:{lineno}"
        if key in ("search", "domain"):
            search = tuple(names.normalize(d) for d in args)
        elif key == "nameserver":
            if len(args) != 1:
                raise ResolvConfError(f"{where}: nameserver takes one address")
            nameservers.append(args[0])
        elif key == "options":
            for opt in args:
                options.append(opt)
                name, _, value = opt.partition(":")
                if name == "ndots":
                    ndots = _clamped(value, where, MAX_NDOTS)
                elif name == "attempts":
                    attempts = max(1, _clamped(value, where, 10))
                elif name == "timeout":
                    timeout = max(1, _clamped(value, where, 60))
        # sortlist, lookup and the like do not change what is asked
    return ResolvConf(search, ndots, attempts, timeout, tuple(nameservers), tuple(options))


def pod_resolv_conf(
    namespace: str,
    zone: str = "cluster.local.",
    node_search: Sequence[str] = (),
    nameserver: str = "10.96.0.10",
    ndots: int = KUBELET_NDOTS,
) -> ResolvConf:
    """What kubelet writes for a `dnsPolicy: ClusterFirst` pod in `namespace`."""
    zone = names.normalize(zone)
    search: tuple[str, ...] = (f"{namespace}.svc.{zone}", f"svc.{zone}", zone)
    search += tuple(names.normalize(d) for d in node_search)
    return ResolvConf(search, ndots, nameservers=(nameserver,), options=(f"ndots:{ndots}",))


# -- candidate names -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str  # absolute
    domain: str | None  # the search domain appended; None: the name as typed

    @property
    def as_is(self) -> bool:
        return self.domain is None


def _dots(name: str) -> int:
    return name.count(".")


def candidates(conf: ResolvConf, name: str, resolver: str = GLIBC) -> list[Candidate]:
    """The names a lookup of `name` may try, in order (the walk stops early on an answer)."""
    if resolver not in RESOLVERS:
        raise ValueError(f"unknown resolver {resolver!r}")
    if name.endswith("."):
        return [Candidate(name, None)]
    base = name
    dots = _dots(base)
    as_is = Candidate(base + ".", None)
    searched = [
        Candidate(base + ".", ".") if d == "." else Candidate(f"{base}.{d}", d) for d in conf.search
    ]
    if dots >= conf.ndots:
        # glibc: as typed first, then the search list; musl: as typed only.
        return [as_is, *searched] if resolver == GLIBC else [as_is]
    root_on_list = any(c.domain == "." for c in searched)
    return searched if root_on_list and resolver == GLIBC else [*searched, as_is]


def lookup_types(qtype: str | None) -> tuple[int, ...]:
    """The types one step sends: getaddrinfo(AF_UNSPEC) by default, else the one asked."""
    if qtype is None:
        return (rr.A, rr.AAAA)
    return (rr.type_from_text(qtype),)


def is_address_lookup(qtypes: Sequence[int]) -> bool:
    return all(t in (rr.A, rr.AAAA) for t in qtypes)


# -- the walk --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one query of a walk got, as the walk needs it. rcode None: no reply (a timeout, a
    network error)."""

    rcode: int | None
    records: tuple[tuple[int, str], ...] = ()  # answer section (type, rdata text)
    tc: bool = False
    unknown: bool = False  # offline: the name would go upstream; nothing is known about it
    note: str = ""
    failure: str = ""  # no reply: what the socket said (REFUSED, RESET, ...); "" a timeout
    # glibc saw ECONNREFUSED (no server reached): res_search gives up at once
    unreachable: bool = False

    def addresses(self, qtype: int) -> list[str]:
        return [text for t, text in self.records if t == qtype]

    @property
    def rcode_text(self) -> str:
        if self.unknown:
            return "UPSTREAM?"
        if self.rcode is None:
            return self.failure or "TIMEOUT"
        return rcode_name(self.rcode)


@dataclass(frozen=True, slots=True)
class Query:
    step: int  # 1-based step number
    qname: str
    qtype: int
    answer: Outcome
    seconds: float | None = None


class Decision(StrEnum):
    """What one step decides."""

    NEXT = "next"  # try the next candidate
    FOUND = "found"  # stop with addresses (or, for other types, records)
    EMPTY = "empty"  # stop with no address (NODATA, CNAME only)
    FAIL = "fail"  # stop with an error (EAI_AGAIN, EAI_FAIL)
    ABORT = "abort"  # glibc: leave the search list, still try the name as typed if not tried
    UNKNOWN = "unknown"  # offline: the outcome depends on an upstream the tool did not ask


def step_decision(
    resolver: str, replies: Sequence[tuple[int, Outcome]], first_as_is: bool
) -> Decision:
    """The library's rule for one step's replies, given as (qtype, answer) in send order."""
    if any(a.unknown for _, a in replies):
        return Decision.UNKNOWN
    if resolver == MUSL:
        # name_from_dns: replies are checked in send order; any SERVFAIL or missing reply is
        # EAI_AGAIN, NXDOMAIN moves on, another error is EAI_FAIL; all NOERROR ends the walk.
        for _, a in replies:
            if a.rcode is None or a.rcode == SERVFAIL:
                return Decision.FAIL
            if a.rcode == NXDOMAIN:
                return Decision.NEXT
            if a.rcode != NOERROR:
                return Decision.FAIL
        return Decision.FOUND if any(a.addresses(t) for t, a in replies) else Decision.EMPTY
    # glibc __res_context_query: any answer record in either reply ends the walk.
    if any(a.rcode == NOERROR and a.records for _, a in replies):
        if is_address_lookup([t for t, _ in replies]):
            return Decision.FOUND if any(a.addresses(t) for t, a in replies) else Decision.EMPTY
        return Decision.FOUND
    if first_as_is:
        # res_search goes on to the search list whatever the name as typed got.
        return Decision.NEXT
    if any(a.unreachable for _, a in replies):
        # __res_context_search returns TRY_AGAIN on ECONNREFUSED, without the as-typed try.
        return Decision.FAIL
    first = replies[0][1]
    code = first.rcode
    if code == NOERROR and len(replies) > 1:
        code = replies[1][1].rcode  # the first reply's rcode unless it is NOERROR
    if code in (NXDOMAIN, NOERROR):
        return Decision.NEXT  # HOST_NOT_FOUND, NO_DATA: keep trying
    if code == SERVFAIL and first.rcode == SERVFAIL:
        return Decision.NEXT  # TRY_AGAIN from SERVFAIL: next search element
    return Decision.ABORT  # timeouts, REFUSED, FORMERR/NOTIMP, SERVFAIL only on AAAA: done


@dataclass(frozen=True, slots=True)
class Result:
    status: str  # found | nxdomain | nodata | error | unknown
    answer: tuple[str, ...] | None  # rdata of the step that ended the lookup, None if none
    name: str | None  # the candidate that answered
    message: str  # what the program sees, as the library reports it


@dataclass
class Walk:
    """Feed it the replies of each step (`record`) until `next_step()` returns None."""

    conf: ResolvConf
    name: str
    resolver: str = GLIBC
    qtypes: tuple[int, ...] = (rr.A, rr.AAAA)
    plan: list[Candidate] = field(init=False)
    queries: list[Query] = field(default_factory=list)
    steps: list[tuple[Candidate, Decision]] = field(default_factory=list)
    result: Result | None = None
    _pos: int = 0

    def __post_init__(self) -> None:
        self.plan = self._plan()

    def _plan(self) -> list[Candidate]:
        if self.resolver == MUSL and not is_address_lookup(self.qtypes):
            # musl's res_search is res_query: no search list at all.
            return [Candidate(names.absolute(self.name), None)]
        return candidates(self.conf, self.name, self.resolver)

    def next_step(self) -> Candidate | None:
        if self.result is not None or self._pos >= len(self.plan):
            if self.result is None:
                self.result = self._exhausted()
            return None
        return self.plan[self._pos]

    def record(self, replies: Sequence[Outcome], seconds: Sequence[float | None] = ()) -> Decision:
        """The replies to the current step, one per type in `qtypes` order."""
        cand = self.plan[self._pos]
        number = len(self.steps) + 1
        pairs = list(zip(self.qtypes, replies, strict=True))
        for i, (qtype, answer) in enumerate(pairs):
            took = seconds[i] if i < len(seconds) else None
            self.queries.append(Query(number, cand.name, qtype, answer, took))
        first_as_is = cand.as_is and self._pos == 0 and len(self.plan) > 1
        decision = step_decision(self.resolver, pairs, first_as_is)
        self.steps.append((cand, decision))
        self._pos += 1
        if decision is Decision.FOUND:
            recs = [text for t, a in pairs for ty, text in a.records if ty == t]
            self.result = Result("found", tuple(recs), cand.name, "")
        elif decision is Decision.EMPTY:
            self.result = Result("nodata", None, cand.name, self._message("nodata"))
        elif decision is Decision.FAIL:
            self.result = Result("error", None, cand.name, self._message("error", pairs))
        elif decision is Decision.UNKNOWN:
            note = next((a.note for _, a in pairs if a.unknown and a.note), "")
            self.result = Result(
                "unknown", None, cand.name, note or "would be forwarded upstream (unknown offline)"
            )
        elif decision is Decision.ABORT:
            # glibc stops searching; the name as typed is still tried unless it already was.
            rest = self.plan[self._pos :]
            self._pos = len(self.plan)
            if rest and rest[-1].as_is:
                self.plan = [*self.plan[: self._pos], rest[-1]]
        return decision

    @property
    def remaining(self) -> list[Candidate]:
        """Candidates not tried because the walk stopped (or did not know how to go on)."""
        return self.plan[self._pos :]

    def _exhausted(self) -> Result:
        if self.resolver == MUSL:
            return Result("nxdomain", None, None, self._message("nxdomain"))
        # res_search's h_errno: the name as typed when it was tried first, else NO_DATA if any
        # step was NODATA, else TRY_AGAIN if any was SERVFAIL, else the last step's.
        codes = [self._step_code(i + 1) for i in range(len(self.steps))]
        if self.steps and self.steps[0][0].as_is and len(self.steps) > 1:
            code = codes[0]
        elif "nodata" in codes:
            code = "nodata"
        elif "error" in codes:
            code = "error"
        else:
            code = codes[-1] if codes else "nxdomain"
        return Result(code, None, None, self._message(code))

    def _step_code(self, number: int) -> str:
        answers = [q.answer for q in self.queries if q.step == number]
        code = answers[0].rcode
        if code == NOERROR and len(answers) > 1:
            code = answers[1].rcode
        if code == NOERROR:
            return "nodata"
        return "nxdomain" if code == NXDOMAIN else "error"

    def _message(self, status: str, pairs: Sequence[tuple[int, Outcome]] = ()) -> str:
        if self.resolver == MUSL:
            if status == "error":
                bad = [a for _, a in pairs if a.rcode is None or a.rcode == SERVFAIL]
                return "Try again (EAI_AGAIN)" if bad else "Non-recoverable failure (EAI_FAIL)"
            return "Name does not resolve (EAI_NONAME)"
        if status == "nodata":
            return "No address associated with hostname (EAI_NODATA)"
        if status == "error":
            return "Temporary failure in name resolution (EAI_AGAIN)"
        return "Name or service not known (EAI_NONAME)"

    # -- accounting --

    @property
    def queries_sent(self) -> int:
        return len(self.queries)

    @property
    def wasted(self) -> int:
        """Queries beyond the one step a lookup of the right name needs."""
        if not self.queries:
            return 0
        return max(0, len(self.queries) - len(self.qtypes))


# -- server side: is an NXDOMAIN name a search-list expansion? --------------------------------

PROTOCOLS = frozenset(("tcp", "udp", "sctp"))


def expansion(
    labels: Sequence[str],
    namespace_exists: Callable[[str], bool],
    service_exists: Callable[[str, str], bool],
) -> tuple[str, str] | None:
    """(kind, namespace) when a missing name is a search-list expansion, else None.

    `labels` are the lower-case labels left of the cluster zone. A name is an expansion when no
    service, endpoint, port or pod name could have that shape: too many labels under
    `<ns>.svc`, a "namespace" that does not exist under `svc`, or a first label under the zone
    that is not svc/pod/dns. kind is "namespace" (`<name>.<ns>.svc.<zone>`: the pod's own
    namespace, which is returned), "svc" (`<name>.svc.<zone>`) or "zone" (`<name>.<zone>`);
    the namespace is "" when the name does not tell.
    """
    if not labels:
        return None
    last = labels[-1]
    if last == "svc":
        if len(labels) < 2:
            return None
        namespace = labels[-2]
        if not namespace_exists(namespace):
            return ("svc", "")
        rest = labels[:-2]
        if len(rest) <= 1:
            return None  # the namespace itself, or a plain missing service
        service = rest[-1]
        if len(rest) == 2:
            return None if service_exists(namespace, service) else ("namespace", namespace)
        if len(rest) == 3 and rest[1].lstrip("_") in PROTOCOLS:
            return None if service_exists(namespace, service) else ("namespace", namespace)
        return ("namespace", namespace)
    if last in ("pod", "dns", "dns-version"):
        return None
    return ("zone", "")
