"""What kind of answer a reply is, as CoreDNS's plugin/pkg/response classifies it: the `{class}`
of a log line and the tier a cache files it under."""

from __future__ import annotations

from enum import StrEnum

from kdns.dns.message import NOERROR, NXDOMAIN, Reply
from kdns.dns.records import NS, SOA


class Class(StrEnum):
    SUCCESS = "success"  # records, or a delegation
    DENIAL = "denial"  # NXDOMAIN, or NODATA
    ERROR = "error"  # any other rcode


def is_delegation(reply: Reply) -> bool:
    """NS records in the authority section and no SOA: a referral, not a NODATA."""
    types = {r.rtype for r in reply.authority}
    return NS in types and SOA not in types


def classify(reply: Reply) -> Class:
    """CoreDNS's response.Classify."""
    if reply.rcode == NXDOMAIN:
        return Class.DENIAL
    if reply.rcode != NOERROR:
        return Class.ERROR
    if reply.answer or is_delegation(reply):
        return Class.SUCCESS
    return Class.DENIAL  # NODATA
