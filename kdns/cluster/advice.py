"""What to change so a lookup stops wasting queries: advice for a finished search walk.

Pure, used by `kdns diagnose`; each piece of advice is given only when the walk shows that it
applies (see docs/diagnose.md for how each was checked against real resolvers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kdns.cluster.search import MUSL, Walk
from kdns.dns import names
from kdns.dns.message import NXDOMAIN, SERVFAIL


@dataclass(frozen=True, slots=True)
class Advice:
    kind: str
    text: str
    snippet: str = ""


def ndots_snippet(
    value: int,
    path: Sequence[str] = ("spec",),
    options: Sequence[tuple[str, str | None]] = (),
) -> str:
    """The manifest change: `dnsConfig.options` under the pod spec at `path` (a Deployment's is
    spec.template.spec), keeping the pod's other options since the list is replaced whole."""
    lines = [f"{'  ' * i}{step}:" for i, step in enumerate(path)]
    pad = "  " * len(path)
    lines += [f"{pad}dnsConfig:", f"{pad}  options:"]
    kept = [(n, v) for n, v in options if n != "ndots"]
    for name, option_value in [("ndots", str(value)), *kept]:
        lines.append(f"{pad}  - name: {name}")
        if option_value is not None:
            lines.append(f'{pad}    value: "{option_value}"')
    return "\n".join(lines) + "\n"


def _in_zones(name: str, zones: Sequence[str]) -> bool:
    low = name.lower()
    return any(low == z or low.endswith("." + z) for z in zones)


# Last labels that make a two-label name an external one rather than svc.namespace.
_COMMON_TLDS = frozenset(
    (
        "com",
        "net",
        "org",
        "io",
        "dev",
        "app",
        "cloud",
        "co",
        "info",
        "biz",
        "edu",
        "gov",
        "mil",
        "int",
        "arpa",
        "test",
        "example",
        "invalid",
        "local",
        "localhost",
        "internal",
        "lan",
        "home",
        "corp",
    )
)


def _missing_namespace(
    walk: Walk, zones: Sequence[str], namespace_exists: Callable[[str], bool] | None
) -> Advice | None:
    """A service name (`svc.ns`, `svc.ns.svc`, `svc.ns.svc.<zone>`) in a namespace that does
    not exist: no search domain, ndots or FQDN can make it resolve."""
    result = walk.result
    if namespace_exists is None or result is None or result.status not in ("nxdomain", "unknown"):
        return None
    if any(q.answer.rcode != NXDOMAIN for q in walk.queries if _in_zones(q.qname, zones)):
        return None
    name = walk.name.rstrip(".").lower()
    labels = name.split(".")
    zone = next((z for z in zones if _in_zones(name + ".", [z])), None)
    sure = True
    if zone is not None:
        labels = labels[: len(labels) - len(zone.rstrip(".").split("."))]
        if len(labels) != 3 or labels[2] != "svc":
            return None
    elif len(labels) == 3 and labels[2] == "svc" and not walk.name.endswith("."):
        pass
    elif len(labels) == 2 and not walk.name.endswith(".") and labels[1] not in _COMMON_TLDS:
        sure = False  # svc.ns, or an external name such as example.org
    else:
        return None
    service, namespace = labels[0], labels[1]
    if namespace_exists(namespace):
        return None
    fix = "check the namespace's name (kubectl get namespaces)"
    text = (
        f"There is no namespace {namespace} in the cluster, so {walk.name} (service {service} "
        f"in namespace {namespace}) cannot resolve: {fix}."
        if sure
        else f"If {walk.name} means service {service} in namespace {namespace}: there is no "
        f"namespace {namespace} in the cluster, {fix}."
    )
    return Advice("namespace", text)


def _fqdn(name: str, per_step: int, sent: int) -> Advice:
    return Advice(
        "fqdn",
        f"Use the fully qualified name with a trailing dot, {name} : it is asked once "
        f"({per_step} quer{'y' if per_step == 1 else 'ies'} instead of {sent}).",
    )


def advise(
    walk: Walk,
    cluster_zones: Sequence[str] = ("cluster.local.",),
    autopath: bool | None = None,
    later: str | None = None,
    manifest: Sequence[str] = ("spec",),
    pod_options: Sequence[tuple[str, str | None]] = (),
    namespace_exists: Callable[[str], bool] | None = None,
) -> list[Advice]:
    """Only the advice that applies to this walk. `autopath`: None when unknown (live mode).

    `later`: for a walk that stopped before its last candidate, the first candidate it did not
    try that has an address ("" when none has one, None when they were not asked).
    `manifest`: where the pod spec is in the manifest and `pod_options` its dnsConfig options,
    for the ndots snippet. `namespace_exists`: the cluster's namespaces, when known (offline).
    """
    out: list[Advice] = []
    result = walk.result
    zones = [names.normalize(z) for z in cluster_zones]
    steps = walk.steps
    typed = walk.name
    per_step = len(walk.qtypes)
    tc_musl = walk.resolver == MUSL and any(q.answer.tc for q in walk.queries)
    if tc_musl:
        out.append(
            Advice(
                "truncated",
                "A reply was truncated (TC): musl before 1.2.4 (Alpine 3.17 and older) never "
                "retries over TCP, so it keeps only the records that fit (often none). Use an "
                "image with musl >= 1.2.4, a glibc-based image, or make the answer smaller.",
            )
        )
    if result is None:
        return out
    stop_cand = steps[-1][0] if steps else None
    if (
        walk.resolver == MUSL
        and result.status in ("nodata", "error")
        and stop_cand is not None
        and not stop_cand.as_is
        and walk.plan[-1].as_is
        and walk.plan[-1] != stop_cand
        and later != ""  # the names musl skipped have no address either: nothing is hidden
    ):
        bad = [q.answer.rcode_text for q in walk.queries if q.step == len(steps)]
        why = "NODATA" if result.status == "nodata" else "/".join(bad)
        real = later or walk.plan[-1].name
        out.append(
            Advice(
                "musl-stop",
                f"musl stopped at {stop_cand.name} ({why}) and never tried {walk.plan[-1].name}: "
                "musl ends the walk at the first reply that is not NXDOMAIN, so a record (or a "
                "wildcard) in a search domain hides the real name"
                + (f" ({real} has an address)" if later else "")
                + f". Look the name up with a trailing dot: {real}",
            )
        )
    servfail = any(q.answer.rcode == SERVFAIL for q in walk.queries)
    if walk.resolver == MUSL and result.status == "error" and servfail:
        out.append(
            Advice(
                "servfail",
                "musl re-sends a SERVFAIL query until its timeout (5 s by default) and then "
                "fails with 'Try again' instead of moving on; glibc would try the next name.",
            )
        )
    last_step = [q.answer for q in walk.queries if q.step == len(steps)]
    if result.status == "error" and all(a.rcode is None and not a.unknown for a in last_step):
        seen = "; ".join(dict.fromkeys(f"{a.rcode_text}: {a.note}" for a in last_step))
        out.append(
            Advice(
                "no-reply",
                f"The DNS server sent no reply ({seen}), so the lookup fails with "
                f"'{result.message}' whatever the name: check that it listens on that address "
                "and port (UDP and TCP) and that nothing in between drops DNS.",
            )
        )
    missing = _missing_namespace(walk, zones, namespace_exists)
    if missing is not None:
        out.append(missing)
        return out  # the name cannot exist: fewer queries for it would not help
    if walk.wasted == 0 or typed.endswith("."):
        if not out and walk.queries:
            out.append(Advice("ok", "No query is wasted: nothing to change."))
        return out
    found_name = result.name if result.status == "found" else None
    if found_name is not None:
        out.append(_fqdn(found_name, per_step, walk.queries_sent))
    last = steps[-1][0] if steps else None
    if result.status == "unknown" and last is not None and last.as_is and not walk.remaining:
        found_name = last.name  # the name as typed is what the upstream will answer
        out.append(_fqdn(found_name, per_step, walk.queries_sent))
    external = found_name is not None and not _in_zones(found_name, zones)
    external = external or (
        result.status in ("unknown", "nxdomain")
        and not _in_zones(names.absolute(typed), zones)
        and typed.count(".") >= 1
    )
    dots = typed.count(".")
    # A name that exists nowhere gains nothing from ndots: glibc still walks the whole search
    # list after trying it as typed; the name itself is the problem.
    if external and result.status != "nxdomain" and dots < walk.conf.ndots and dots >= 1:
        value = max(dots, 1)
        caveat = ""
        if value < 2:
            caveat = (
                " With ndots:1, short cluster names such as svc.namespace are sent upstream "
                "first (glibc) or never searched (musl): prefer the trailing dot for this name."
            )
        elif walk.resolver == MUSL:
            caveat = (
                f" musl never searches names with {value} or more dots, so a cluster name such "
                "as svc.namespace.svc then needs its full form with a trailing dot."
            )
        searched = sum(1 for c, _ in steps if not c.as_is)
        out.append(
            Advice(
                "ndots",
                f"{typed} has {dots} dot{'s' if dots != 1 else ''}, fewer than ndots:"
                f"{walk.conf.ndots}, so it walks the search list first ({searched * per_step} "
                f"queries before the name as typed). Set the pod's ndots to {value} so it is "
                f"tried as typed first:{caveat}",
                ndots_snippet(value, manifest, pod_options),
            )
        )
    cluster_misses = [
        q for q in walk.queries if q.answer.rcode == NXDOMAIN and _in_zones(q.qname, zones)
    ]
    if cluster_misses and result.status == "found" and autopath is not True:
        state = "is not enabled" if autopath is False else "if it is not enabled"
        out.append(
            Advice(
                "autopath",
                f"Server side: autopath {state}. With `autopath @kubernetes` (and `pods "
                "verified` in the kubernetes block) kdns answers the first search-path query "
                "with the final answer, saving the client's other steps. It needs the server "
                "to see the pod's own IP, and it cannot help a name that does not exist.",
                "autopath @kubernetes\nkubernetes cluster.local in-addr.arpa ip6.arpa {\n"
                "    pods verified\n}\n",
            )
        )
    if external and len(cluster_misses) >= 2:
        out.append(
            Advice(
                "nodelocal",
                "NodeLocal DNSCache answers repeated search-path misses from a cache on the node, "
                "so they do not reach the cluster DNS Service (or the upstream resolver).",
            )
        )
    return out
