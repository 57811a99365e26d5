"""`tls CERT KEY [CA] { client_auth ... keylog FILE }`: the certificate a `tls://` (DNS over TLS)
or `https://` (DNS over HTTPS) server block presents, as CoreDNS's plugin/tls.

The files are loaded when the Corefile is read, so `kdns check` reports a missing or broken
certificate with its line. In a plain `dns://` block the directive has no effect (CoreDNS accepts
it there too); an `https://` block without it serves plain HTTP, for use behind a proxy that
terminates TLS.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from kdns.corefile import Directive
from kdns.plugins import parsing
from kdns.plugins.base import BlockInfo, PluginSpec
from kdns.transport import tls_server

log = logging.getLogger("kdns.tls")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert: str
    key: str
    ca: str | None = None
    client_auth: str = "nocert"
    keylog: str | None = None

    def context(self, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
        return tls_server.server_context(
            self.cert, self.key, self.ca, self.client_auth, self.keylog, alpn
        )


def parse(d: Directive, block: BlockInfo) -> TlsConfig:
    parsing.arg_count(d, 2, 3, "tls CERT KEY [CA]")
    base = Path(d.file).parent
    files = [str(base / t.text) for t in d.args]
    opts: dict[str, str] = {}
    for sub in d.block or ():
        parsing.no_block(sub)
        if sub.name == "client_auth":
            parsing.arg_count(sub, 1, 1, "client_auth " + "|".join(tls_server.CLIENT_AUTH))
            if sub.args[0].text not in tls_server.CLIENT_AUTH:
                raise sub.args[0].error(
                    f"unknown authentication type {sub.args[0].text!r} (expected one of: "
                    f"{', '.join(tls_server.CLIENT_AUTH)})"
                )
            opts["client_auth"] = sub.args[0].text
        elif sub.name == "keylog":
            parsing.arg_count(sub, 1, 1, "keylog FILE")
            opts["keylog"] = str(base / sub.args[0].text)
        else:
            raise parsing.unknown_property("tls", sub, ("client_auth", "keylog"))
    config = TlsConfig(files[0], files[1], files[2] if len(files) > 2 else None, **opts)
    try:
        tls_server.server_context(config.cert, config.key, config.ca, config.client_auth)
    except (OSError, ssl.SSLError) as exc:
        raise d.error(f"tls: cannot load {' '.join(files)}: {exc}") from None
    if config.keylog:
        log.warning("tls: keylog %s lets anyone holding it decrypt this server", config.keylog)
    return config


SPEC = PluginSpec("tls", parse, None)
