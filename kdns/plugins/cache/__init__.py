"""`cache [TTL] [ZONES...] { ... }`: a response cache, as CoreDNS's `cache` plugin.

- config: reading the directive;
- store: the entries, their LRU store, and how replies are classified and timed;
- plugin: the handler on the query path (hits, misses, prefetch, what is stored);
- stale: background refreshes and serving expired entries (`serve_stale`).
"""

from __future__ import annotations

from kdns.plugins.base import PluginSpec
from kdns.plugins.cache.config import CacheConfig, Tier, parse
from kdns.plugins.cache.plugin import CachePlugin, build

__all__ = ["SPEC", "CacheConfig", "CachePlugin", "Tier", "build", "parse"]

SPEC = PluginSpec("cache", parse, build)
