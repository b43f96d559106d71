"""Loopback only: free ports and the EPICS environment that keeps Channel Access on 127.0.0.1."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port that is free for both TCP and UDP on 127.0.0.1."""
    while True:
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class BeaconSink:
    """A UDP socket on 127.0.0.1 where servers send their beacons (no caRepeater runs)."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])

    def close(self) -> None:
        self.socket.close()


def epics_env(server_port: int, beacon_port: int) -> dict[str, str]:
    """Channel Access settings for a server on `server_port` and its clients, all on 127.0.0.1."""
    return {
        "EPICS_CA_ADDR_LIST": "127.0.0.1",
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_SERVER_PORT": str(server_port),
        "EPICS_CAS_SERVER_PORT": str(server_port),
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_PORT": str(beacon_port),
        "EPICS_CA_REPEATER_PORT": str(free_port()),
        "EPICS_CA_CONN_TMO": "30.0",
        "EPICS_CA_MAX_ARRAY_BYTES": str(1 << 20),
    }
