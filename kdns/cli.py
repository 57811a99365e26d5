"""Command line: `kdns serve`, `kdns check`, `kdns diagnose`, `kdns --version`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from kdns import __version__, logs
from kdns.config import Config, load
from kdns.corefile import CorefileError

log = logging.getLogger("kdns")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kdns", description="Kubernetes cluster DNS server")
    p.add_argument("--version", action="version", version=f"kdns {__version__}")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve DNS as the Corefile says")
    serve.add_argument("--conf", default="Corefile", help="Corefile path (default ./Corefile)")
    check = sub.add_parser("check", help="validate a Corefile without serving")
    check.add_argument("--conf", default="Corefile", help="Corefile path (default ./Corefile)")
    from kdns.diagnose import cli as diagnose_cli

    diagnose_cli.add_parser(sub)
    return p


def _load(path: str) -> Config | None:
    try:
        return load(path)
    except CorefileError as exc:
        print(str(exc), file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.conf)
    if config is None:
        return 1
    for block in config.blocks:
        names = ", ".join(e.name for e in block.entries)
        over = "" if block.scheme == "dns" else f" ({block.scheme}://)"
        print(
            f"{block.file}:{block.line}: zones {' '.join(block.zones)} port {block.port}{over}: "
            f"{names}"
        )
    errors, warnings = _check_snapshots(config)
    if errors:
        return 1
    n = len({(b.file, b.line) for b in config.blocks})  # keys on two ports: one block, two lines
    found = f"{n} server block{'s' if n != 1 else ''}"
    if warnings:
        found += f", {warnings} warning{'s' if warnings != 1 else ''}"
    print(f"{args.conf}: OK, no errors found ({found})")
    return 0


def _check_snapshots(config: Config) -> tuple[int, int]:
    """Load each snapshot the Corefile names as `serve` would: (errors, warnings) printed."""
    from kdns.sources import static

    errors = warnings = 0
    paths = [e.config.snapshot for b in config.blocks for e in b.all("kubernetes")]
    for path in dict.fromkeys(p for p in paths if p):
        try:
            snap = static.load(path)
        except static.SnapshotError as exc:
            _warn(exc.warnings)
            print(*exc.errors, sep="\n", file=sys.stderr)
            errors += len(exc.errors)
            warnings += len(exc.warnings)
            continue
        _warn(snap.warnings)
        warnings += len(snap.warnings)
        print(f"{path}: snapshot of {snap.summary()}")
    return errors, warnings


def _warn(warnings: Sequence[str]) -> None:
    for text in warnings:
        where, _, message = text.partition(": ")
        print(f"{where}: warning: {message}", file=sys.stderr)


async def _serve(config: Config) -> int:
    from kdns.server.app import App

    app = App(config)
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if app.stopping.is_set():
            return
        log.info("%s: Shutting down servers then terminating", sig.name)
        app.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await app.run()
    return app.exit_code


def run_loop(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed (the image has it), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return int(uvloop.run(coro))


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args.conf)
    if config is None:
        return 1
    log.info("kdns %s starting with %s", __version__, args.conf)
    try:
        code = run_loop(_serve(config))
    except OSError as exc:
        log.error("cannot serve: %s", exc)
        return 1
    log.info("kdns stopped")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_format, args.log_level)
    if args.command == "check":
        return cmd_check(args)
    if args.command == "serve":
        return cmd_serve(args)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    return 2
