"""A minimal cluster DNS for the pod test cluster: ``<service>.<namespace>.svc.<domain>`` -> its ClusterIP.

Enough for pods that name Services (a chart's ``helm test`` pod curling ``http://<service>:<port>``),
nothing more: A records of ClusterIP Services only, answered from the API server; every other name
gets NXDOMAIN and nothing is forwarded anywhere (pods resolve no name outside the cluster). A thread
serving UDP on the node's address, port 53 (kubelet's ``clusterDNS``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import struct
import threading
from collections.abc import Mapping

from .kubectl import kubectl

_TYPE_A = 1
_CLASS_IN = 1


def parse_question(packet: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, name, qtype, end offset of the question) of a query with one question."""
    query_id, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        raise ValueError("one question per query")
    labels, offset = [], 12
    while True:
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("no compression in questions")
        labels.append(packet[offset : offset + length].decode("ascii").lower())
        offset += length
    qtype, _qclass = struct.unpack("!HH", packet[offset : offset + 4])
    return query_id, flags, ".".join(labels), qtype, offset + 4


def answer(packet: bytes, address: str | None) -> bytes:
    """The response to ``packet``: an A record for ``address``, NOERROR without one for other
    types of a known name, NXDOMAIN for an unknown name."""
    query_id, flags, _name, qtype, end = parse_question(packet)
    question = packet[12:end]
    rd = flags & 0x0100
    if address is None:
        return struct.pack("!HHHHHH", query_id, 0x8000 | 0x0400 | rd | 3, 1, 0, 0, 0) + question
    records = b""
    if qtype == _TYPE_A:
        # Name: a pointer to the question (offset 12); TTL 5 s: Services of a test come and go.
        records = (
            struct.pack("!HHHIH", 0xC00C, _TYPE_A, _CLASS_IN, 5, 4) + ipaddress.IPv4Address(address).packed
        )
    count = 1 if records else 0
    return struct.pack("!HHHHHH", query_id, 0x8000 | 0x0400 | rd, 1, count, 0, 0) + question + records


class ClusterDNS:
    """Serves Service names from the API server (through kubectl) on ``host:port``."""

    def __init__(
        self, host: str, env: Mapping[str, str], domain: str = "cluster.local", port: int = 53
    ) -> None:
        self.host, self.port, self.domain = host, port, domain
        self.env = dict(env)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._thread = threading.Thread(target=self._serve, name="cluster-dns", daemon=True)
        self._stopped = threading.Event()

    def start(self) -> None:
        self._sock.bind((self.host, self.port))
        self._sock.settimeout(0.5)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._sock.close()

    def resolve(self, name: str) -> str | None:
        suffix = f".svc.{self.domain}"
        if not name.endswith(suffix):
            return None
        parts = name[: -len(suffix)].split(".")
        if len(parts) != 2:
            return None
        service, namespace = parts
        result = kubectl(
            self.env, "get", "service", service, "-n", namespace, "-o", "json", check=False, timeout=10
        )
        if result.returncode != 0:
            return None
        cluster_ip = json.loads(result.stdout).get("spec", {}).get("clusterIP")
        return cluster_ip if cluster_ip and cluster_ip != "None" else None

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                packet, client = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(ValueError, IndexError, struct.error, UnicodeDecodeError, OSError):
                _, _, name, _, _ = parse_question(packet)
                self._sock.sendto(answer(packet, self.resolve(name)), client)
