"""The `kdns diagnose` subcommand (argument parsing and output)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("diagnose", help="show what a pod's resolver sends for a name")
    p.add_argument("name")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print("kdns diagnose: not implemented yet", file=sys.stderr)
    return 2
