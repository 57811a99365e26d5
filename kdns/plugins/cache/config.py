"""Reading `cache [TTL] [ZONES...] { ... }` into a CacheConfig, as CoreDNS 1.14's setup does."""

from __future__ import annotations

from dataclasses import dataclass, replace

from kdns.corefile import Directive, Token
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo

MAX_SUCCESS_TTL = 3600
MAX_DENIAL_TTL = 1800
MIN_TTL = 5
DEFAULT_CAPACITY = 9984
SERVFAIL_TTL = 5.0
STALE_UP_TO = 3600.0  # `serve_stale` without a DURATION
MAX_STALE_TTL = (1 << 32) - 1  # a TTL field is 32 bits
MAX_STALE_RECHECK = 300.0
PROPERTIES = (
    "success",
    "denial",
    "prefetch",
    "serve_stale",
    "serve_stale_policy",
    "servfail",
    "disable",
    "keepttl",
)
STALE_USAGE = (
    "serve_stale [DURATION] [immediate [STALE_TTL [FAILURE_RECHECK]]"
    " | verify [VERIFY_TIMEOUT [STALE_TTL [FAILURE_RECHECK]]]]"
)
POLICIES = ("prefer_positive",)


@dataclass(frozen=True, slots=True)
class Tier:
    capacity: int
    max_ttl: int
    min_ttl: int = MIN_TTL


@dataclass(frozen=True, slots=True)
class CacheConfig:
    zones: tuple[str, ...]
    success: Tier = Tier(DEFAULT_CAPACITY, MAX_SUCCESS_TTL)
    denial: Tier = Tier(DEFAULT_CAPACITY, MAX_DENIAL_TTL)
    prefetch: int = 0  # hits that make an entry worth refreshing early; 0: off
    prefetch_window: float = 60.0
    prefetch_percentage: int = 10
    serve_stale: float = 0.0  # how long past expiry an entry may still be served; 0: off
    verify_stale: bool = False  # ask upstream first, serve stale only when that fails
    verify_timeout: float = 0.0  # how long a verify may keep the client; 0: until it ends
    stale_ttl: int = 0  # the TTL a stale answer shows (RFC 8767 suggests 30)
    stale_recheck: float = 0.0  # after a failed refresh, no new one for this long; 0: off
    prefer_positive: bool = False  # a stale positive answer beats a denial or a failure
    servfail: float = SERVFAIL_TTL
    disable_success: tuple[str, ...] = ()
    disable_denial: tuple[str, ...] = ()
    keepttl: bool = False


def _tier(sub: Directive, current: Tier) -> Tier:
    parsing.arg_count(sub, 1, 3, f"{sub.name} CAPACITY [TTL] [MINTTL]")
    cap = parsing.integer(sub.args[0], 1, 1 << 30, f"{sub.name} capacity")
    ttl = current.max_ttl
    min_ttl = current.min_ttl
    if len(sub.args) > 1:
        ttl = parsing.integer(sub.args[1], 0, 1 << 31, f"{sub.name} TTL")
    if len(sub.args) > 2:
        min_ttl = parsing.integer(sub.args[2], 0, 1 << 31, f"{sub.name} MINTTL")
    return Tier(cap, ttl, min_ttl)


def parse(d: Directive, block: BlockInfo) -> CacheConfig:
    args = list(d.args)
    max_ttl: int | None = None
    if args and args[0].text.lstrip("-").isdigit():
        max_ttl = parsing.integer(args.pop(0), 1, 1 << 31, "cache TTL")
    cfg = CacheConfig(zones=parsing.zones(args, block.zones))
    if max_ttl is not None:
        cfg = replace(
            cfg,
            success=replace(cfg.success, max_ttl=max_ttl, min_ttl=min(MIN_TTL, max_ttl)),
            denial=replace(cfg.denial, max_ttl=max_ttl, min_ttl=min(MIN_TTL, max_ttl)),
        )
    stale_given: Directive | None = None
    policy_given: Directive | None = None
    for sub in d.block or ():
        parsing.no_block(sub)
        name, sargs = sub.name, sub.args
        if name == "success":
            cfg = replace(cfg, success=_tier(sub, cfg.success))
        elif name == "denial":
            cfg = replace(cfg, denial=_tier(sub, cfg.denial))
        elif name == "prefetch":
            cfg = _prefetch(sub, cfg)
        elif name == "serve_stale":
            cfg = _serve_stale(sub, cfg)
            stale_given = sub
        elif name == "serve_stale_policy":
            if policy_given is not None:
                raise sub.error(
                    f"serve_stale_policy given twice (first at line {policy_given.line})"
                )
            cfg = replace(cfg, prefer_positive=_policy(sub))
            policy_given = sub
        elif name == "servfail":
            parsing.arg_count(sub, 1, 1, "servfail DURATION")
            ttl = parsing.duration(sargs[0])
            if ttl > 300:
                raise sargs[0].error("servfail duration must be at most 5m")
            cfg = replace(cfg, servfail=ttl)
        elif name == "disable":
            if not sargs or sargs[0].text not in ("success", "denial"):
                raise sub.error("usage: disable success|denial [ZONES...]")
            zones = parsing.zones(sargs[1:], cfg.zones)
            field_name = f"disable_{sargs[0].text}"
            cfg = replace(cfg, **{field_name: getattr(cfg, field_name) + zones})
        elif name == "keepttl":
            parsing.no_args(sub)
            cfg = replace(cfg, keepttl=True)
        else:
            raise parsing.unknown_property("cache", sub, PROPERTIES)
    if policy_given is not None and stale_given is None:
        raise policy_given.error("serve_stale_policy needs serve_stale in the same cache block")
    return cfg


def _prefetch(sub: Directive, cfg: CacheConfig) -> CacheConfig:
    parsing.arg_count(sub, 1, 3, "prefetch AMOUNT [[DURATION] [PERCENTAGE%]]")
    amount = parsing.integer(sub.args[0], 1, 1 << 31, "prefetch amount")
    window = cfg.prefetch_window
    pct = cfg.prefetch_percentage
    for tok in sub.args[1:]:
        if tok.text.endswith("%"):
            pct = parsing.integer(
                type(tok)(tok.text[:-1], tok.file, tok.line), 10, 90, "prefetch percentage"
            )
        else:
            window = parsing.duration(tok)
    return replace(cfg, prefetch=amount, prefetch_window=window, prefetch_percentage=pct)


def _serve_stale(sub: Directive, cfg: CacheConfig) -> CacheConfig:
    """`serve_stale [DURATION] [immediate [STALE_TTL [RECHECK]] | verify [TIMEOUT [...]]]`."""
    args = sub.args
    parsing.arg_count(sub, 0, 5, STALE_USAGE)
    stale = parsing.duration(args[0]) if args else STALE_UP_TO
    verify = False
    if len(args) > 1:
        mode = args[1].text.lower()  # CoreDNS compares the mode case-insensitively
        if mode not in ("immediate", "verify"):
            raise args[1].error(
                f"serve_stale refresh mode must be immediate or verify, got {args[1].text!r}"
            )
        verify = mode == "verify"
    rest = list(args[2:])
    timeout = 0.0
    if verify and rest:
        timeout = parsing.duration(rest.pop(0))
    if len(rest) > 2:
        raise rest[2].error(f"unexpected argument {rest[2].text!r}: usage: {STALE_USAGE}")
    stale_ttl = _stale_ttl(rest[0]) if rest else 0
    recheck = 0.0
    if len(rest) > 1:
        recheck = parsing.duration(rest[1])
        if recheck > MAX_STALE_RECHECK:
            raise rest[1].error(f"serve_stale failure recheck {rest[1].text} is above 5m")
    return replace(
        cfg,
        serve_stale=stale,
        verify_stale=verify,
        verify_timeout=timeout,
        stale_ttl=stale_ttl,
        stale_recheck=recheck,
    )


def _stale_ttl(tok: Token) -> int:
    seconds = parsing.duration(tok)
    if seconds != int(seconds):
        raise tok.error(f"serve_stale TTL {tok.text} must be whole seconds (e.g. 30s), or 0")
    if seconds > MAX_STALE_TTL:
        raise tok.error(f"serve_stale TTL {tok.text} is above {MAX_STALE_TTL}s")
    return int(seconds)


def _policy(sub: Directive) -> bool:
    parsing.arg_count(sub, 1, 1, "serve_stale_policy prefer_positive")
    policy = sub.args[0].text.lower()
    if policy not in POLICIES:
        raise sub.args[0].error(
            f"unknown serve_stale_policy {sub.args[0].text!r} (expected prefer_positive)"
        )
    return True
