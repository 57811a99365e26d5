"""Kubernetes DNS semantics over an immutable index. Pure: no asyncio, sockets or API client."""
