#!/usr/bin/env python3
"""What a pending timer costs a thread that waits on its sockets (issue 32).

A socket ping-pong between two processes (this one on CPU 0, its echo on CPU 1); this one
waits for each answer in `epoll_wait`, with no timeout (-1) or with an hour's (what a runtime
passes while a timer is pending). Prints this process's user and system CPU per round trip,
five alternated pairs. Usage: benches/scripts/epoll-timeout.py [ROUND_TRIPS, default 200000]
"""
import os, select, socket, sys, time, resource
n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
def run(timeout):
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {1})
        a.close()
        for _ in range(n + 1000):
            d = b.recv(64)
            if not d: break
            b.send(d)
        os._exit(0)
    b.close()
    os.sched_setaffinity(0, {0})
    ep = select.epoll(); ep.register(a.fileno(), select.EPOLLIN)
    for i in range(n + 1000):
        if i == 1000:
            r0 = resource.getrusage(resource.RUSAGE_SELF)
        a.send(b"x" * 16)
        ep.poll(timeout)
        a.recv(64)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    a.close(); os.waitpid(pid, 0)
    return (r1.ru_utime - r0.ru_utime) * 1e6 / n, (r1.ru_stime - r0.ru_stime) * 1e6 / n
for i in range(5):
    for t in (-1, 3600):
        u, s = run(t)
        print(f"timeout={t:5} user {u:5.2f} sys {s:5.2f} total {u+s:5.2f}", flush=True)
