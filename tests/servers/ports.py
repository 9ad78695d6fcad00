"""Free-port lookup for servers that cannot bind port 0 themselves (moto_server, aiosmtpd)."""

import socket


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    There is a small race between closing the probe socket and the server binding the port;
    it is acceptable for tests and is the only option for servers that reject port 0.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
