#!/usr/bin/python3
"""Host side of the smoke test: serve guest->host on <uds>_1234 and push
host->guest through `CONNECT 5000`.  Checks every byte against the pattern
vsock-probe uses and prints MB/s for each direction."""
import socket
import sys
import threading
import time

UDS, NBYTES = sys.argv[1], int(sys.argv[2])
PATTERN = bytes((i * 7 + 3) & 0xff for i in range(65536))


def expected(off, n):
    out = bytearray()
    while n:
        o = off % 65536
        take = min(n, 65536 - o)
        out += PATTERN[o:o + take]
        off += take
        n -= take
    return bytes(out)


def guest_to_host():
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(UDS + "_1234")
    srv.listen(1)
    conn, _ = srv.accept()
    t0, got, bad = time.monotonic(), 0, 0
    while True:
        b = conn.recv(1 << 20)
        if not b:
            break
        if b != expected(got, len(b)):
            bad += 1
        got += len(b)
    dt = time.monotonic() - t0
    conn.sendall(b"host got %d bad-chunks %d\n" % (got, bad))
    conn.close()
    srv.close()
    print("host: guest->host %d bytes, bad chunks %d, %.1f MB/s" % (got, bad, got / dt / 1e6), flush=True)


def host_to_guest():
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(UDS)
        s.sendall(b"CONNECT 5000\n")
        line = b""
        while not line.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                break
            line += c
        if not line.startswith(b"OK "):
            s.close()
            time.sleep(0.5)
            continue
        print("host: connected to guest port 5000, answer %r" % line, flush=True)
        t0 = time.monotonic()
        s.sendall(expected(0, NBYTES))
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            reply += b
        dt = time.monotonic() - t0
        print("host: host->guest %d bytes, %.1f MB/s, guest said %r" % (NBYTES, NBYTES / dt / 1e6, reply), flush=True)
        s.close()
        return
    print("host: guest port 5000 never accepted", flush=True)


t = threading.Thread(target=guest_to_host)
t.start()
host_to_guest()
t.join()
