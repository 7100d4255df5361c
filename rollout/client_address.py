"""The address a request comes from, as the log-in lockout and the audit trail record it.

Behind the TLS proxy every request arrives from the proxy's address, and the client's own address
is in ``X-Forwarded-For``. That header is whatever the sender wrote, so it is believed only when
the request comes from a proxy named in ``TRUSTED_PROXIES``; each proxy appends the address it was
talking to, so the right-most entry that is not itself a trusted proxy is the client. Anything to
its left was written by the client and is ignored.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(request) -> str | None:
    peer = request.META.get("REMOTE_ADDR") or None
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))

    def is_trusted(address) -> bool:
        return any(address in network for network in trusted)

    nearest = _address(peer or "")
    if nearest is None or not is_trusted(nearest):
        return peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for entry in reversed(forwarded.split(",")):
        address = _address(entry)
        if address is None:
            # A trusted proxy wrote something that is no address: nothing further left is
            # reliable, so the last proxy that was is the best answer.
            break
        nearest = address
        if not is_trusted(address):
            break
    return str(nearest)
