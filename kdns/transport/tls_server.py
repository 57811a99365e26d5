"""TLS for kdns's own listeners (DNS over TLS and DNS over HTTPS servers), from the `tls`
directive's files, as CoreDNS's plugin/tls builds its server configuration."""

from __future__ import annotations

import ssl

# CoreDNS's client_auth names (Go's tls.ClientAuthType) as Python's verify modes. Python cannot
# ask for a client certificate without verifying it, so "request" and "require" verify a
# certificate given against the CA, as "verify_if_given" and "require_and_verify" do.
CLIENT_AUTH = {
    "nocert": ssl.CERT_NONE,
    "request": ssl.CERT_OPTIONAL,
    "require": ssl.CERT_REQUIRED,
    "verify_if_given": ssl.CERT_OPTIONAL,
    "require_and_verify": ssl.CERT_REQUIRED,
}


def server_context(
    cert: str,
    key: str,
    ca: str | None = None,
    client_auth: str = "nocert",
    keylog: str | None = None,
    alpn: tuple[str, ...] = (),
) -> ssl.SSLContext:
    """A server context presenting CERT/KEY, TLS 1.2 at least (as CoreDNS). Raises OSError or
    ssl.SSLError when a file cannot be read or does not hold what it should."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = CLIENT_AUTH[client_auth]
    if ca is not None:
        ctx.load_verify_locations(cafile=ca)
    elif ctx.verify_mode != ssl.CERT_NONE:
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    if keylog is not None:
        ctx.keylog_filename = keylog  # debugging only: it lets anyone with the file decrypt
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx
