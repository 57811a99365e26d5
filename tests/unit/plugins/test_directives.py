"""The directive table: kdns's chain order is CoreDNS's plugin.cfg order, and every directive
CoreDNS knows is either served or refused as not supported yet."""

from __future__ import annotations

import pytest

from kdns import config
from kdns.corefile import CorefileError
from kdns.plugins import directives

# Directives kdns serves that are not in CoreDNS's own plugin.cfg (external plugins).
EXTERNAL = {"ocp_dnsnameresolver"}


def test_chain_order_follows_coredns_plugin_cfg() -> None:
    names = [s.name for s in directives.SPECS if s.name not in EXTERNAL]
    cfg = [n for n in directives.PLUGIN_CFG if n in names]
    assert names == cfg
    assert len(set(names)) == len(names)


def test_positions_follow_the_table() -> None:
    positions = [directives.position(s.name) for s in directives.SPECS]
    assert positions == sorted(positions)
    assert directives.position("no-such-plugin") == len(directives.SPECS)


@pytest.mark.parametrize("name", [n for n in directives.PLUGIN_CFG if directives.spec(n) is None])
def test_known_but_unserved_directive_is_refused_as_not_yet(name: str) -> None:
    with pytest.raises(CorefileError, match=rf'^Corefile:2: directive "{name}" is not supported'):
        config.from_text(f".:1053 {{\n    {name}\n}}\n", "Corefile")
