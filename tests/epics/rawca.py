"""A Channel Access client on a plain socket, for what libca cannot be made to do."""

from __future__ import annotations

import socket

import caproto as ca
from caproto import ChannelType


class RawClient:
    """A CA client on a plain socket that can stop reading, to play a stuck display."""

    def __init__(self, port: int, host: str = "test") -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.circuit = ca.VirtualCircuit(ca.CLIENT, ("127.0.0.1", port), priority=0)
        self.send(
            ca.VersionRequest(0, ca.DEFAULT_PROTOCOL_VERSION),
            ca.HostNameRequest(host),
            ca.ClientNameRequest("test"),
        )

    def send(self, *commands: object) -> None:
        self.sock.sendall(b"".join(self.circuit.send(*commands)))

    def receive(self, timeout: float) -> list[object]:
        """Every command that arrives until the socket is quiet for `timeout` seconds."""
        self.sock.settimeout(timeout)
        commands: list[object] = []
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return commands
            if not data:
                return commands
            commands += self._commands(data)

    def take(self, count: int, timeout: float = 5.0) -> list[object]:
        """The next `count` commands to arrive; fails if they do not within `timeout` s."""
        self.sock.settimeout(timeout)
        commands: list[object] = []
        while len(commands) < count:
            data = self.sock.recv(65536)
            assert data, f"the server closed the circuit after {commands}"
            commands += self._commands(data)
        return commands

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """Whether the server closes the circuit within `timeout` s of quiet; what it sends
        until then is dropped."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            pass
        return True

    def _commands(self, data: bytes) -> list[object]:
        """The commands in `data`, taken into the client circuit's state."""
        received, _ = self.circuit.recv(data)
        for command in received:
            self.circuit.process_command(command)
        return list(received)

    def subscribe(self, name: str, subscription: int) -> None:
        channel = ca.ClientChannel(name, self.circuit)
        self.send(channel.create())
        self.receive(0.5)
        self.send(channel.subscribe(data_type=ChannelType.TIME_DOUBLE, subscriptionid=subscription))
