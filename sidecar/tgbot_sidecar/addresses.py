"""Client addresses: normalisation, network sets and the X-Forwarded-For walk.

All functions here are total: malformed input yields ``None`` ("unknown client"), which the
sidecar answers with 403 - never an exception on the request path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def normalize(address: Address) -> Address:
    """Compare IPv4-mapped IPv6 (``::ffff:1.2.3.4``, what a dual-stack socket reports) as IPv4."""
    if isinstance(address, IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
        if address.scope_id is not None:
            # A zone (fe80::1%eth0) names an interface, not a different host.
            return IPv6Address(address.compressed.split("%", 1)[0])
    return address


def parse_address(text: str) -> Address | None:
    """Parse one bare address (optionally ``[v6]``) as found in X-Forwarded-For or a peername."""
    text = text.strip(" \t")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text or len(text) > 64:
        return None
    try:
        return normalize(ipaddress.ip_address(text))
    except ValueError:
        return None


def parse_network(text: str) -> Network:
    """Parse a CIDR; a mapped IPv6 network (``::ffff:0:0/96`` and below) is rewritten as IPv4."""
    network = ipaddress.ip_network(text.strip(), strict=False)
    if isinstance(network, IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return IPv4Network((mapped, network.prefixlen - 96), strict=False)
    return network


class NetworkSet:
    """A set of CIDRs answering ``address in networks`` for normalised addresses."""

    __slots__ = ("_v4", "_v6", "networks")

    def __init__(self, networks: Iterable[str | Network]) -> None:
        parsed = [parse_network(n) if isinstance(n, str) else n for n in networks]
        self.networks: tuple[Network, ...] = tuple(parsed)
        # Plain integer ranges: cheaper than ipaddress containment checks and the same answer.
        self._v4 = tuple((int(n.network_address), int(n.broadcast_address)) for n in parsed if n.version == 4)
        self._v6 = tuple((int(n.network_address), int(n.broadcast_address)) for n in parsed if n.version == 6)

    def __contains__(self, address: object) -> bool:
        if isinstance(address, IPv4Address):
            ranges = self._v4
        elif isinstance(address, IPv6Address):
            ranges = self._v6
        else:
            return False
        value = int(address)
        return any(low <= value <= high for low, high in ranges)

    def __bool__(self) -> bool:
        return bool(self.networks)


def client_address(peer: Address | None, forwarded_for: Sequence[str], trusted: NetworkSet) -> Address | None:
    """The address a request came from, believing X-Forwarded-For only from trusted proxies.

    ``forwarded_for`` are the values of every X-Forwarded-For header, in order (several headers
    are one comma separated list). When the TCP peer is a trusted proxy, walk the list from the
    right, skip trusted hops and return the first untrusted address. When every hop is trusted,
    the leftmost one is the client. Any malformed entry makes the client unknown (``None``):
    a proxy we trust never writes garbage, so garbage means someone is spoofing.
    """
    if peer is None or peer not in trusted or not forwarded_for:
        return peer
    entries = ",".join(forwarded_for).split(",")
    client: Address = peer
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            return None
        client = address
        if address not in trusted:
            return address
    return client
