"""`loadbalance [round_robin | weighted WEIGHTFILE] { reload DURATION | prefer CIDR... }`: the
order of address records in every reply, as CoreDNS's `loadbalance`.

- `round_robin` (the default): A, AAAA and MX records are shuffled in the answer, authority and
  additional sections of every NOERROR reply (cache hits included: this plugin runs before
  `cache`), so clients that take the first address spread over a headless service's endpoints.
  CNAMEs stay first and other records keep their place ahead of the shuffled ones (glibc
  follows CNAME chains in order). `prefer CIDR...` then moves the addresses inside those
  networks to the front, in the order the networks are given.
- `weighted WEIGHTFILE`: for A, AAAA and SRV questions one address is drawn, with the
  probability its weight in WEIGHTFILE gives it (1 when not listed), and put first; the others
  keep their order. The file is read again every `reload` (default 30s, 0: never) when its
  content changed; a broken file keeps the weights read before and is reported as `FILE:LINE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path

from kdns.corefile import CorefileError, Directive
from kdns.dns.message import NOERROR, Reply, Request
from kdns.dns.records import AAAA, CNAME, MX, RR, SRV, A
from kdns.plugins import memo, parsing
from kdns.plugins.base import BlockInfo, BuildContext, Handler, PluginSpec

log = logging.getLogger("kdns.loadbalance")

_SHUFFLED = (A, AAAA)
DEFAULT_RELOAD = 30.0
MAX_WEIGHT = 255

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Weights = dict[str, dict[IP, int]]  # owner name (lower case, with the root dot) -> IP -> weight


@dataclass(frozen=True, slots=True)
class LoadbalanceConfig:
    policy: str = "round_robin"
    weight_file: str = ""  # weighted: the path, relative ones taken from the Corefile's folder
    reload: float = DEFAULT_RELOAD
    prefer: tuple[Network, ...] = ()


def parse(d: Directive, block: BlockInfo) -> LoadbalanceConfig:
    args = d.args
    policy = args[0].text if args else "round_robin"
    if policy == "round_robin":
        if len(args) > 1:
            raise args[1].error(f"unknown property for round_robin: {args[1].text!r}")
        return LoadbalanceConfig(prefer=_prefer(d))
    if policy != "weighted":
        raise args[0].error(
            f"unknown loadbalance policy {policy!r} (expected round_robin or weighted)"
        )
    if len(args) < 2:
        raise args[0].error("missing weight file argument: usage: loadbalance weighted WEIGHTFILE")
    if len(args) > 2:
        raise args[2].error(f"unexpected argument {args[2].text!r} after the weight file")
    reload = DEFAULT_RELOAD
    for sub in d.block or ():
        parsing.no_block(sub)
        if sub.name != "reload":
            raise parsing.unknown_property("loadbalance weighted", sub, ("reload",))
        if not sub.args:
            raise sub.error("reload duration value is missing")
        if len(sub.args) > 1:
            raise sub.args[1].error(f"unexpected argument {sub.args[1].text!r}")
        try:
            reload = parsing.duration(sub.args[0])
        except CorefileError as exc:
            raise sub.args[0].error(f"invalid reload duration: {exc.message}") from None
    path = str(Path(d.file).parent / args[1].text)
    # As CoreDNS, a file that is not there (yet) is read when the server starts; one that is
    # there must parse, or `kdns check` says where it does not.
    with contextlib.suppress(OSError, UnicodeDecodeError):
        parse_weights(Path(path).read_text(), path)
    return LoadbalanceConfig("weighted", path, reload)


def _prefer(d: Directive) -> tuple[Network, ...]:
    networks: list[Network] = []
    for sub in d.block or ():
        parsing.no_block(sub)
        if sub.name != "prefer":
            raise parsing.unknown_property("loadbalance", sub, ("prefer",))
        for tok in sub.args:
            try:
                networks.append(ipaddress.ip_network(tok.text, strict=False))
            except ValueError:
                raise tok.error(f"invalid CIDR {tok.text!r} (expected e.g. 10.0.0.0/8)") from None
    return tuple(networks)


def parse_weights(text: str, path: str) -> Weights:
    """The weight file: a domain name on a line of its own, then `IP WEIGHT` lines for it;
    `#` comments and blank lines. Raises CorefileError at the offending line of `path`."""
    domains: Weights = {}
    current: dict[IP, int] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) == 1:
            if _ip(fields[0]) is not None:
                raise CorefileError(
                    path, number, f"{fields[0]!r} is an address, not a domain name: no weight?"
                )
            name = fields[0].lower()
            current = domains.setdefault(name if name.endswith(".") else name + ".", {})
        elif len(fields) == 2:
            ip = _ip(fields[0])
            if ip is None:
                raise CorefileError(path, number, f"wrong IP address {fields[0]!r}")
            weight = fields[1]
            if not weight.isdigit() or not 1 <= int(weight) <= MAX_WEIGHT:
                raise CorefileError(path, number, f"wrong weight {weight!r} (1 to {MAX_WEIGHT})")
            if current is None:
                raise CorefileError(path, number, "an address before any domain name")
            current[ip] = int(weight)
        else:
            raise CorefileError(path, number, f"cannot parse {line!r} (DOMAIN, or IP WEIGHT)")
    return domains


def _ip(text: str) -> IP | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _address(rr: RR) -> IP | None:
    if rr.rtype == A and len(rr.rdata) == 4:
        return ipaddress.IPv4Address(rr.rdata)
    if rr.rtype == AAAA and len(rr.rdata) == 16:
        return ipaddress.IPv6Address(rr.rdata)
    return None


def _split(records: tuple[RR, ...]) -> tuple[list[RR], list[RR], list[RR], list[RR]]:
    """CNAMEs, addresses, MX, the rest: in their order."""
    cnames: list[RR] = []
    addresses: list[RR] = []
    mx: list[RR] = []
    rest: list[RR] = []
    for rr in records:
        if rr.rtype == CNAME:
            cnames.append(rr)
        elif rr.rtype in _SHUFFLED:
            addresses.append(rr)
        elif rr.rtype == MX:
            mx.append(rr)
        else:
            rest.append(rr)
    return cnames, addresses, mx, rest


def round_robin(records: tuple[RR, ...]) -> tuple[RR, ...]:
    if len(records) < 2:
        return records
    cnames, addresses, mx, rest = _split(records)
    if len(addresses) < 2 and len(mx) < 2:
        return records
    random.shuffle(addresses)
    random.shuffle(mx)
    return (*cnames, *rest, *addresses, *mx)


def prefer(records: tuple[RR, ...], networks: tuple[Network, ...]) -> tuple[RR, ...]:
    """Addresses in `networks` first (network by network), then the others; as CoreDNS."""
    cnames, addresses, mx, rest = _split(records)
    if not addresses:
        return records
    first: list[RR] = []
    for net in networks:
        for rr in addresses:
            ip = _address(rr)
            if ip is not None and ip in net and rr not in first:
                first.append(rr)
    later = [rr for rr in addresses if rr not in first]
    return (*cnames, *first, *later, *mx, *rest)


def weighted(records: tuple[RR, ...], weights: Weights, rng: random.Random) -> tuple[RR, ...]:
    """One address drawn by weight put first; CoreDNS's weighted round robin."""
    cnames, addresses, mx, rest = _split(records)
    if not addresses:
        return records
    scored = []
    for i, rr in enumerate(addresses):
        ip = _address(rr)
        table = weights.get(rr.name.lower())
        scored.append((table.get(ip, 1) if table and ip is not None else 1, i))
    scored.sort(key=lambda s: -s[0])  # heaviest first, as CoreDNS draws
    pick = rng.randrange(sum(w for w, _ in scored))
    for weight, i in scored:
        if pick < weight:
            addresses[0], addresses[i] = addresses[i], addresses[0]
            break
        pick -= weight
    return (*cnames, *rest, *addresses, *mx)


class LoadbalancePlugin:
    name = "loadbalance"

    def __init__(self, config: LoadbalanceConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng or random.Random()
        self.weights: Weights = {}
        self._digest = b""
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, request: Request, call_next: Handler) -> Reply:
        reply = await call_next(request)
        if reply.rcode != NOERROR:
            return reply
        cfg = self.config
        if cfg.policy == "weighted":
            memo.deny()  # every answer draws its first address anew
            if request.qtype not in (A, AAAA, SRV):
                return reply
            return replace(
                reply,
                answer=weighted(reply.answer, self.weights, self.rng),
                additional=weighted(reply.additional, self.weights, self.rng),
            )
        answer = round_robin(reply.answer)
        additional = round_robin(reply.additional)
        if cfg.prefer:
            memo.deny()  # the fast path's rotation would undo the preferred order
            answer = prefer(answer, cfg.prefer)
            additional = prefer(additional, cfg.prefer)
        else:
            note = memo.get()
            if note is not None:
                note.shuffle = True  # replies re-served from bytes rotate the records on every hit
        return replace(
            reply, answer=answer, authority=round_robin(reply.authority), additional=additional
        )

    async def start(self) -> None:
        if self.config.policy != "weighted":
            return
        self.load(starting=True)
        if self.config.reload > 0:
            self._task = asyncio.create_task(self._watch(), name="loadbalance weights")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.reload)
            try:
                self.load(starting=False)
            except Exception:  # the next round tries again; the weights read before serve
                log.exception("plugin/loadbalance: reading %s failed", self.config.weight_file)

    def load(self, *, starting: bool) -> bool:
        """Read the weight file if its content changed; True if new weights now serve.

        At start, a file that cannot be read is an error only if it is never read again
        (`reload 0`), and a broken one is; later, both keep the weights read before."""
        path = self.config.weight_file
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            if starting and self.config.reload == 0:
                raise OSError(
                    exc.errno, f"loadbalance: cannot read weight file {path}: {exc.strerror}"
                ) from None
            log.warning(
                "plugin/loadbalance: cannot read weight file %s: %s; trying again in %gs",
                path,
                exc.strerror,
                self.config.reload,
            )
            return False
        digest = hashlib.sha256(data).digest()
        if digest == self._digest:
            return False
        self._digest = digest  # a broken file is reported once, not every reload
        try:
            try:
                text = data.decode()
            except UnicodeDecodeError:
                raise CorefileError(path, 1, "the weight file is not UTF-8 text") from None
            weights = parse_weights(text, path)
        except CorefileError as exc:
            if starting:
                raise
            log.error("plugin/loadbalance: %s; keeping the weights read before", exc)
            return False
        self.weights = weights
        log.info("plugin/loadbalance: loaded weight file %s", path)
        return True


def build(config: LoadbalanceConfig, ctx: BuildContext) -> LoadbalancePlugin:
    return LoadbalancePlugin(config)


SPEC = PluginSpec("loadbalance", parse, build)
