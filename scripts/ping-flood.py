#!/usr/bin/env python3
"""A WebSocket ping flood that never reads, bounded, for BENCHMARKS.md (issue 26).

Connects to `certauth serve` with a client certificate, upgrades to a WebSocket, then writes
masked pings (125-byte payloads) and never reads the pongs, until MIB mebibytes are sent or
the server closes the connection. Prints the server's resident memory (VmRSS of PID) as it
goes, and at the end its peak and whether the server cut the client off.

    scripts/ping-flood.py 127.0.0.1:8443 client.pem client.key 1024 SERVER_PID
"""
import os
import socket
import ssl
import sys
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    addr, cert, key, mib, pid = sys.argv[1:6]
    host, port = addr.rsplit(":", 1)
    budget = int(mib) << 20
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection((host, int(port)), timeout=10)
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += tls.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    frame = bytes([0x89, 0x80 | 125, 0, 0, 0, 0]) + b"p" * 125
    chunk = frame * 512
    start_rss = peak = rss_mib(pid)
    sent, cut_off, started, next_report = 0, False, time.time(), 0
    while sent < budget:
        try:
            tls.sendall(chunk)
        except (OSError, ssl.SSLError):
            cut_off = True
            break
        sent += len(chunk)
        peak = max(peak, rss_mib(pid))
        if sent >= next_report:
            print(f"{sent >> 20:6} MiB sent  {time.time() - started:6.1f} s  server RSS {rss_mib(pid):8.1f} MiB")
            next_report += 64 << 20
    took = time.time() - started
    print(
        f"sent {sent / 2**20:.0f} MiB in {took:.1f} s; server RSS {start_rss:.1f} MiB before, "
        f"peak {peak:.1f} MiB; {'cut off by the server' if cut_off else 'never cut off'}"
    )
    time.sleep(1)
    print(f"server RSS 1 s after: {rss_mib(pid):.1f} MiB")
    os._exit(0)


if __name__ == "__main__":
    main()
