"""The `kdns diagnose` subcommand: arguments, the walk loop, and the exit status.

Exit status: 0 when the diagnosis ran (whatever the lookup's outcome), 1 when the input is wrong
(unreadable resolv.conf or Corefile, bad server address), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from kdns.cluster import search
from kdns.cluster.advice import advise
from kdns.cluster.search import RESOLVERS, Walk
from kdns.diagnose import report, resolv
from kdns.diagnose.pods import FoundPod
from kdns.diagnose.sources import Live, Offline, SourceError, resolve_server
from kdns.dns import records as rr


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "diagnose",
        help="show the queries a pod's resolver sends for a name, and the waste",
        description="Replay the search-list walk glibc or musl performs for NAME, query by "
        "query, and say how to avoid the wasted queries.",
    )
    p.add_argument("name", help="the name as the program looks it up (trailing dot: absolute)")
    p.add_argument(
        "--namespace",
        "-n",
        help="the pod's namespace: a ClusterFirst pod in NS (default: default), or the "
        "namespace of a --pod manifest that names none",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--resolv-conf", metavar="PATH", help="read a real resolv.conf instead")
    where.add_argument(
        "--pod",
        metavar="FILE|NAMESPACE/NAME",
        help="the resolv.conf the kubelet writes for this pod: a manifest (Pod, Deployment, "
        "StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) or a live pod read from the API",
    )
    p.add_argument(
        "--node-search",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="a search domain of the node that kubelet appends (repeatable; with --namespace)",
    )
    p.add_argument(
        "--node-resolv-conf",
        metavar="PATH",
        help="the node's resolv.conf, the kubelet's --resolv-conf (with --pod; default "
        "/etc/resolv.conf; '' as the kubelet's empty value)",
    )
    p.add_argument(
        "--cluster-dns",
        default="10.96.0.10",
        metavar="IP[,IP]",
        help="the kubelet's --cluster-dns (default 10.96.0.10; '' for none)",
    )
    p.add_argument(
        "--cluster-domain",
        "--zone",
        dest="zone",
        help="the kubelet's --cluster-domain (default: the Corefile's cluster zone offline, "
        "else cluster.local)",
    )
    p.add_argument("--kubeconfig", metavar="PATH", help="for --pod NAMESPACE/NAME")
    p.add_argument("--context", help="kubeconfig context for --pod NAMESPACE/NAME")
    p.add_argument("--endpoint", metavar="URL", help="API server URL for --pod NAMESPACE/NAME")
    p.add_argument("--ndots", type=int, help="override the ndots option")
    p.add_argument(
        "--server",
        metavar="HOST[:PORT]",
        help="ask this DNS server (live mode); without it, answer offline from --conf",
    )
    p.add_argument(
        "--conf", default="Corefile", help="Corefile for offline mode (default ./Corefile)"
    )
    p.add_argument("--resolver", choices=RESOLVERS, default=search.GLIBC)
    p.add_argument(
        "--qtype",
        help="one type per step: A models getaddrinfo(AF_INET), AAAA AF_INET6, others "
        "res_search (default: A and AAAA together, getaddrinfo(AF_UNSPEC))",
    )
    p.add_argument(
        "--tcp",
        action="store_true",
        help="send every query over TCP (through kubectl port-forward, which carries only TCP)",
    )
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each reply")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def _fail(message: str) -> int:
    print(f"kdns diagnose: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    try:
        qtypes = search.lookup_types(args.qtype)
    except ValueError as exc:
        return _fail(str(exc))
    if args.ndots is not None and not 0 <= args.ndots <= search.MAX_NDOTS:
        return _fail(f"--ndots must be between 0 and {search.MAX_NDOTS}")
    offline: Offline | None = None
    live: Live | None = None
    if not args.timeout > 0:
        return _fail("--timeout must be a positive number of seconds")
    if args.server is not None:
        try:
            host, port = resolve_server(args.server)
        except ValueError as exc:
            return _fail(str(exc))
        live = Live(host, port, args.resolver, args.timeout, args.tcp)
    else:
        from kdns.config import load
        from kdns.corefile import CorefileError

        try:
            offline = Offline(load(args.conf))
        except (CorefileError, SourceError, OSError) as exc:
            return _fail(f"{exc} (offline mode reads --conf; use --server to ask a DNS server)")
    zones = offline.cluster_zones if offline is not None else ()
    zone = args.zone or (zones[0] if zones else "cluster.local.")
    try:
        chosen = resolv.choose(args, zone)
    except resolv.InputError as exc:
        return _fail(str(exc))
    conf = chosen.conf
    walk = Walk(conf, args.name, args.resolver, qtypes)
    if live is not None:
        asyncio.run(_walk_live(walk, live))
    else:
        assert offline is not None
        while (cand := walk.next_step()) is not None:
            walk.record([offline.ask(cand.name, t) for t in qtypes])
    later: str | None = None
    stopped = walk.result.status if walk.result is not None else None
    if walk.resolver == search.MUSL and walk.remaining and stopped in ("nodata", "error"):
        # Would a name musl skipped have answered? Ask them as glibc would go on.
        if live is not None:
            later = asyncio.run(_first_address_live(walk, live))
        else:
            assert offline is not None
            later = _first_address(walk, offline)
    found = chosen.pod
    advice = advise(
        walk,
        cluster_zones=zones or (zone,),
        autopath=offline.autopath if offline is not None else None,
        later=later,
        manifest=found.spec_path if found is not None else ("spec",),
        pod_options=_pod_options(found),
        namespace_exists=offline.namespace_exists if offline is not None else None,
    )
    source = f"DNS server {args.server}" if live else f"{args.conf} (offline)"
    if args.json:
        extra = {
            "mode": "live" if live else "offline",
            "source": source,
            "resolv_conf_from": chosen.origin,
            "resolv_conf": chosen.as_json(),
            "dns_policy": chosen.policy,
            "kubelet_warnings": list(chosen.warnings),
            "ndots": conf.ndots,
        }
        sys.stdout.write(report.as_json(walk, advice, extra))
        return 0
    library = {
        search.GLIBC: "glibc 2.36 rules",
        search.MUSL: "musl 1.2.3 rules (Alpine)",
    }[args.resolver]
    if qtypes == (rr.A, rr.AAAA):
        call = "getaddrinfo(AF_UNSPEC)"
    elif qtypes == (rr.A,):
        call = "getaddrinfo(AF_INET)"
    elif qtypes == (rr.AAAA,):
        call = "getaddrinfo(AF_INET6)"
    else:
        call = f"res_search({rr.type_name(qtypes[0])})"
    override = [f"  ndots:{conf.ndots} from --ndots"] if args.ndots is not None else []
    header = [
        *chosen.text(),
        *override,
        f"Lookup of {args.name!r} by {call}, {library}",
        f"Answers from: {source}",
    ]
    sys.stdout.write(report.text(walk, advice, header, live is not None))
    return 0


def _pod_options(found: FoundPod | None) -> list[tuple[str, str | None]]:
    """The dnsConfig options the manifest already has (the ndots snippet keeps them)."""
    if found is None or found.pod.dns_config is None:
        return []
    return list(found.pod.dns_config.options)


async def _walk_live(walk: Walk, live: Live) -> None:
    while (cand := walk.next_step()) is not None:
        answers, took = await live.ask_step(cand.name, walk.qtypes)
        walk.record(answers, took)


def _first_address(walk: Walk, offline: Offline) -> str | None:
    for cand in walk.remaining:
        answers = [offline.ask(cand.name, t) for t in walk.qtypes]
        if any(a.unknown for a in answers):
            return None
        if any(a.addresses(t) for t, a in zip(walk.qtypes, answers, strict=True)):
            return cand.name
    return ""


async def _first_address_live(walk: Walk, live: Live) -> str | None:
    for cand in walk.remaining:
        answers, _ = await live.ask_step(cand.name, walk.qtypes)
        if any(a.addresses(t) for t, a in zip(walk.qtypes, answers, strict=True)):
            return cand.name
        if any(a.rcode is None for a in answers):
            return None  # no reply: unknown
    return ""
