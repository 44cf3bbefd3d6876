"""Helpers shared by the Python benchmarks and harnesses in loadtest/
(bench_events.py, bench_swap.py, crash_harness.py, sweep). Each of them
runs as a script from this directory, so `import benchlib` finds it."""

import socket


def free_ports(n):
    """n distinct TCP ports on 127.0.0.1 that were free a moment ago (all
    bound at once, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
