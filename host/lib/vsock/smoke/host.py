#!/usr/bin/python3
"""Host side of the smoke test.  usage: host.py UDS BYTES [ROUNDS [PAR [QMP]]]

Serves guest->host connections on <UDS>_1234 (ROUNDS*PAR of them, in
parallel) and pushes host->guest data through `CONNECT 5000` once per
round.  Checks every byte against the pattern vsock-probe uses and prints
MB/s for each transfer.  With QMP (a QEMU QMP socket path), the VM is
paused for a second (`stop`, `cont`) in the middle of the first
guest->host transfer, which must survive it."""
import json
import socket
import sys
import threading
import time

UDS, NBYTES = sys.argv[1], int(sys.argv[2])
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
PAR = int(sys.argv[4]) if len(sys.argv) > 4 else 1
QMP = sys.argv[5] if len(sys.argv) > 5 else None
paused = threading.Event()
PATTERN = bytes((i * 7 + 3) & 0xff for i in range(65536))
lock = threading.Lock()
results = []


def expected(off, n):
    out = bytearray()
    while n:
        o = off % 65536
        take = min(n, 65536 - o)
        out += PATTERN[o:o + take]
        off += take
        n -= take
    return bytes(out)


def qmp(*commands):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(QMP)
        f = s.makefile("rw")
        f.readline()
        for cmd in ("qmp_capabilities",) + commands:
            f.write(json.dumps({"execute": cmd}) + "\n")
            f.flush()
            while "return" not in json.loads(f.readline()):
                pass
            if cmd == "stop":
                time.sleep(1)


def serve_one(conn):
    t0, got, bad = time.monotonic(), 0, 0
    while True:
        b = conn.recv(1 << 20)
        if not b:
            break
        if QMP and got and not paused.is_set():
            paused.set()
            qmp("stop", "cont")
            print("host: paused and resumed the VM after %d bytes" % got, flush=True)
        if b != expected(got, len(b)):
            bad += 1
        got += len(b)
    dt = time.monotonic() - t0
    conn.sendall(b"host got %d bad-chunks %d\n" % (got, bad))
    conn.close()
    with lock:
        results.append((got, bad, dt))


def guest_to_host():
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(UDS + "_1234")
    srv.listen(64)
    workers = []
    for _ in range(ROUNDS * PAR):
        conn, _ = srv.accept()
        w = threading.Thread(target=serve_one, args=(conn,))
        w.start()
        workers.append(w)
    for w in workers:
        w.join()
    srv.close()
    ok = sum(1 for g, b, _ in results if g == NBYTES and b == 0)
    best = max(g / dt / 1e6 for g, _, dt in results)
    print("host: guest->host %d connections, %d complete and exact, fastest %.1f MB/s"
          % (len(results), ok, best), flush=True)


def host_to_guest_try():
    """One CONNECT 5000 attempt; False if the guest refused or reset it (a
    listener of the previous round may still be closing)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(UDS)
        s.sendall(b"CONNECT 5000\n")
        line = b""
        while not line.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                return False
            line += c
        if not line.startswith(b"OK "):
            return False
        t0 = time.monotonic()
        s.sendall(expected(0, NBYTES))
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            reply += b
        if not reply:
            return False
        dt = time.monotonic() - t0
        print("host: host->guest %d bytes, %.1f MB/s, answer %r, guest said %r"
              % (NBYTES, NBYTES / dt / 1e6, line, reply), flush=True)
        return True


def host_to_guest_once(deadline):
    while time.monotonic() < deadline:
        try:
            if host_to_guest_try():
                return
        except OSError:
            pass
        time.sleep(0.2)
    print("host: guest port 5000 never accepted", flush=True)


t = threading.Thread(target=guest_to_host, daemon=True)
t.start()
end = time.monotonic() + 240
for _ in range(ROUNDS):
    host_to_guest_once(end)
t.join(max(0, end - time.monotonic()))
