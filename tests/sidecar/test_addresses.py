"""Address parsing and the X-Forwarded-For walk: examples and properties."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from hypothesis import given
from hypothesis import strategies as st

from tgbot_sidecar.addresses import NetworkSet, client_address, normalize, parse_address

TRUSTED = NetworkSet(["10.0.0.0/8", "fd00::/8"])

v4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
v6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
mapped = v4.map(lambda a: IPv6Address("::ffff:" + str(a)))
trusted_v4 = st.builds(IPv4Address, st.integers(0x0A000000, 0x0AFFFFFF))
addresses = st.one_of(v4, v6, mapped, trusted_v4)


def render(address: IPv4Address | IPv6Address, style: int) -> str:
    text = str(address)
    if style == 1 and address.version == 6:
        return f"[{text}]"
    if style == 2:
        return f"  {text}\t"
    return text


garbage = st.sampled_from(["", "unknown", "1.2.3", "1.2.3.4:80", "::ffff:zz", "a" * 70, "_hidden", "[::1"])
entries = st.one_of(
    st.tuples(addresses, st.integers(0, 2)).map(lambda t: render(*t)),
    garbage,
    st.text(max_size=20),
)


def test_examples():
    assert parse_address("::ffff:149.154.167.220") == IPv4Address("149.154.167.220")
    assert parse_address("[2001:db8::1]") == IPv6Address("2001:db8::1")
    assert parse_address("fe80::1%eth0") == IPv6Address("fe80::1")
    assert parse_address("149.154.167.220:443") is None
    assert IPv4Address("149.154.167.220") in NetworkSet(["::ffff:149.154.160.0/116"])
    peer = IPv4Address("10.1.2.3")
    assert client_address(peer, ["149.154.167.220, 10.9.9.9"], TRUSTED) == IPv4Address("149.154.167.220")
    # The spoofed leftmost entry is never reached: the walk stops at the first untrusted hop.
    assert client_address(peer, ["149.154.167.220, 6.6.6.6"], TRUSTED) == IPv4Address("6.6.6.6")
    # Several headers are one list, in order.
    assert client_address(peer, ["149.154.167.220", "10.0.0.9"], TRUSTED) == IPv4Address("149.154.167.220")
    assert client_address(peer, ["1.1.1.1, garbage"], TRUSTED) is None
    assert client_address(peer, ["1.1.1.1,,10.0.0.1"], TRUSTED) is None
    assert client_address(peer, ["10.0.0.7, 10.0.0.8"], TRUSTED) == IPv4Address("10.0.0.7")
    # Untrusted peers cannot speak for anyone else.
    assert client_address(IPv4Address("6.6.6.6"), ["149.154.167.220"], TRUSTED) == IPv4Address("6.6.6.6")


@given(st.text(max_size=80))
def test_parse_address_is_total(text: str):
    result = parse_address(text)
    assert result is None or isinstance(result, IPv4Address | IPv6Address)
    if isinstance(result, IPv6Address):
        assert result.ipv4_mapped is None


@given(v4)
def test_mapped_addresses_compare_as_ipv4(address: IPv4Address):
    assert parse_address(f"::ffff:{address}") == address
    assert normalize(IPv6Address(f"::ffff:{address}")) == address
    assert (address in TRUSTED) == (parse_address(f"::ffff:{address}") in TRUSTED)


@given(addresses, st.lists(st.lists(entries, max_size=5).map(", ".join), max_size=3))
def test_client_address_properties(peer: IPv4Address | IPv6Address, headers: list[str]):
    result = client_address(normalize(peer), headers, TRUSTED)
    candidates = {normalize(peer)} | {
        a for h in headers for e in h.split(",") if (a := parse_address(e)) is not None
    }
    # Never invents an address, never returns a mapped form.
    assert result is None or result in candidates
    if isinstance(result, IPv6Address):
        assert result.ipv4_mapped is None
    if normalize(peer) not in TRUSTED or not headers:
        assert result == normalize(peer)


@given(
    st.lists(st.one_of(v4, v6, trusted_v4), min_size=1, max_size=6),
    trusted_v4,
)
def test_trusted_hop_walk(chain: list[IPv4Address | IPv6Address], proxy: IPv4Address):
    """From a trusted peer, the answer is the rightmost untrusted hop (or the leftmost hop)."""
    result = client_address(proxy, [", ".join(map(str, chain))], TRUSTED)
    untrusted = [a for a in chain if a not in TRUSTED]
    assert result == (untrusted[-1] if untrusted else chain[0])


def test_network_set_matches_ipaddress():
    networks = NetworkSet(["149.154.160.0/20", "91.108.4.0/22", "2001:67c:4e8::/48"])
    for text, expected in [
        ("149.154.160.0", True),
        ("149.154.175.255", True),
        ("149.154.176.0", False),
        ("91.108.7.1", True),
        ("2001:67c:4e8:f00::1", True),
        ("2001:67c:4e9::1", False),
    ]:
        assert (ip_address(text) in networks) is expected, text
