#!/usr/bin/env python3
"""Unterminated request heads against a plain-HTTP port, bounded, for BENCHMARKS.md (issue 26).

Opens N connections to HOST:PORT, writes up to KIB kibibytes of one header line to each
without blocking (what the server does not read stays in the kernel), never ends the head,
and holds them for SECS seconds, printing the server's resident memory (VmRSS of PID) every
second and its peak.

    scripts/header-flood.py 127.0.0.1:9100 1000 392 20 SERVER_PID
"""
import socket
import sys
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    addr, n, kib, secs, pid = sys.argv[1:6]
    host, port = addr.rsplit(":", 1)
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (int(kib) << 10)
    start = rss_mib(pid)
    conns = []
    for _ in range(int(n)):
        try:
            s = socket.create_connection((host, int(port)), timeout=0.5)
        except OSError:
            continue
        s.setblocking(False)
        conns.append([s, 0])
    peak, started = start, time.time()
    while time.time() - started < float(secs):
        for c in conns:
            s, sent = c
            if sent < len(head):
                try:
                    c[1] += s.send(head[sent:sent + 65536])
                except (BlockingIOError, OSError):
                    pass
        peak = max(peak, rss_mib(pid))
        time.sleep(0.05)
    print(
        f"{len(conns)} connections; server RSS {start:.1f} MiB before, peak {peak:.1f} MiB, "
        f"{rss_mib(pid):.1f} MiB after {secs} s"
    )


if __name__ == "__main__":
    main()
