"""Live Kubernetes source: list + watch through kubernetes-asyncio (placeholder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kdns.cluster.index import IndexBuilder


class KubernetesSource:
    def __init__(
        self, config: Any, builder: IndexBuilder, publish: Callable[[], None], registry: Any
    ) -> None:
        self.config = config

    async def run(self) -> None:
        raise NotImplementedError("the live Kubernetes source is not implemented yet")
