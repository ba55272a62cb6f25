#!/usr/bin/env python3
"""`make attack`: hostile clients against the release binary, one table of outcomes.

Every attack runs against a fresh server on 127.0.0.1 with short deadlines, is bounded in
time, and is judged on what a user would care about: the expected outcome (a 4xx, a close
within the deadline, a GOAWAY), the server's CPU time during the attack, its RSS after, and a
/healthz probe answered afterwards. Exits non-zero if any row is not as expected.
Tools: Debian's slowhttptest and h2load; raw sockets for everything hand-made.
"""

import argparse
import os
import re
import resource
import socket
import struct
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Short deadlines keep every row to seconds.
SERVER_FLAGS = ["--header-read-timeout", "2s", "--body-read-timeout", "2s",
                "--write-timeout", "2s", "--idle-timeout", "3s", "--max-connections", "256"]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Server:
    def __init__(self, binary, extra=(), nofile=None):
        self.port = free_port()
        env = dict(os.environ, MY_SERVICE_PORT=str(self.port))
        env.pop("RUST_LOG", None)

        def limits():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        flags = dict(zip(SERVER_FLAGS[::2], SERVER_FLAGS[1::2]))
        flags.update(zip(extra[::2], extra[1::2]))
        argv = [binary, "--listen", HOST] + [a for kv in flags.items() for a in kv]
        self.proc = subprocess.Popen(argv, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=limits)
        deadline = time.monotonic() + 10
        while probe(self.port) != 200:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def cpu(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def connect(port, timeout=5.0):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def probe(port, timeout=2.0):
    """Status of GET /healthz on a fresh connection, or None."""
    try:
        with connect(port, timeout) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
            m = re.match(rb"HTTP/1\.1 (\d{3})", head)
            return int(m.group(1)) if m else None
    except OSError:
        return None


def read_all(s, limit):
    """Reads until close or `limit` seconds; returns (bytes, seconds, closed)."""
    start = time.monotonic()
    out = b""
    while time.monotonic() - start < limit:
        s.settimeout(max(0.05, limit - (time.monotonic() - start)))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return out, time.monotonic() - start, True
        if not chunk:
            return out, time.monotonic() - start, True
        out += chunk
    return out, time.monotonic() - start, False


def statuses(raw):
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3})", raw)]


# ---- HTTP/2 by hand ---------------------------------------------------------------------

def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_str(s):
    s = s.encode() if isinstance(s, str) else s
    assert len(s) < 127
    return bytes([len(s)]) + s


def get_block(path="/healthz"):
    # :method GET, :scheme http, :path (literal, indexed name 4), :authority (indexed name 1)
    return b"\x82\x86" + b"\x04" + hpack_str(path) + b"\x01" + hpack_str("x")


def h2_open(port, settings=b""):
    s = connect(port)
    s.sendall(PREFACE + frame(4, 0, 0, settings))
    return s


def h2_frames(raw):
    """Frame types in `raw` (complete frames only)."""
    kinds, i = [], 0
    while i + 9 <= len(raw):
        length = int.from_bytes(raw[i:i + 3], "big")
        kinds.append(raw[i + 3])
        i += 9 + length
    return kinds


def flood(s, payload, seconds):
    """Sends `payload` repeatedly for up to `seconds` without reading; returns bytes sent and
    whether the server closed the connection."""
    sent, start = 0, time.monotonic()
    s.settimeout(1.0)
    while time.monotonic() - start < seconds:
        try:
            sent += s.send(payload)
        except socket.timeout:
            continue
        except OSError:
            return sent, True
    return sent, False


# ---- the attacks ---------------------------------------------------------------------------
# Each returns (observed, as_expected).

MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded: yes\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX : y\r\n\r\n",
    b"G\x01T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health z HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
    b"GET /healthz HTTP/1.1\r\n\r\n",  # no Host
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
]


def send_and_read(srv, raw_request, limit):
    """Sends `raw_request` on a fresh connection (the server may close it halfway) and reads
    what comes back until close or `limit` seconds; returns the statuses of the responses."""
    with connect(srv.port) as s:
        try:
            s.sendall(raw_request)
        except OSError:
            pass
        raw, _, _ = read_all(s, limit)
    return statuses(raw)


def malformed(srv):
    got = []
    for req in MALFORMED:
        st = send_and_read(srv, req, 3)
        got.append(st[0] if st else "close")
    ok = all(g == "close" or 400 <= g < 500 or g == 505 for g in got)
    return f"{len(got)} variants: {', '.join(map(str, got))}", ok


# Each ends with a request only a confused parser would see; the server must never answer it
# (it would be a 404: only /healthz is asked for in the open).
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
SMUGGLING = [
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(SMUGGLED)) + SMUGGLED,
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n",
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 0\r\n\r\n" + SMUGGLED,
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + SMUGGLED,
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n" + SMUGGLED,
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: +%d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b\r\nX\r\n0\r\n\r\n",
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n" + SMUGGLED,
    b"POST /healthz HTTP/1.1\nHost: x\nContent-Length: %d\n\n" % len(SMUGGLED) + SMUGGLED,
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
]


def smuggling(srv):
    answered_smuggled, results = 0, []
    for req in SMUGGLING:
        st = send_and_read(srv, req, 2)
        answered_smuggled += st.count(404)
        results.append("/".join(map(str, st)) or "close")
    return (f"{len(SMUGGLING)} variants: {', '.join(results)}; smuggled requests answered: "
            f"{answered_smuggled}", answered_smuggled == 0)


def held_open(srv, n, first_bytes, limit=8):
    """Opens `n` connections that send `first_bytes` then nothing; seconds until the last closed."""
    socks = []
    for _ in range(n):
        s = connect(srv.port)
        if first_bytes:
            s.sendall(first_bytes)
        socks.append(s)
    start = time.monotonic()
    served = probe(srv.port)
    worst, still_open = 0.0, 0
    for s in socks:
        _, took, closed = read_all(s, max(0.1, limit - (time.monotonic() - start)))
        still_open += not closed
        worst = max(worst, time.monotonic() - start)
        s.close()
    return worst, still_open, served


def silent(srv):
    worst, left, served = held_open(srv, 200, b"")
    return (f"200 conns, all closed by {worst:.1f} s, {left} left open, probe {served}",
            left == 0 and worst < 4 and served == 200)


def partial_preface(srv):
    worst, left, served = held_open(srv, 200, PREFACE[:16])
    return (f"200 conns, all closed by {worst:.1f} s, {left} left open, probe {served}",
            left == 0 and worst < 4 and served == 200)


def slowhttptest(srv, mode, extra, seconds):
    """Runs slowhttptest; returns its CSV rows (seconds, closed, pending, connected, available)."""
    prefix = f"/tmp/attack-slowhttptest-{os.getpid()}"
    cmd = ["slowhttptest", mode, "-g", "-o", prefix, "-l", str(seconds), "-p", "2",
           "-u", f"http://{HOST}:{srv.port}{extra.pop('path', '/healthz')}"]
    for k, v in extra.items():
        cmd += [k, str(v)]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=seconds + 60, check=False)
    rows = []
    try:
        with open(prefix + ".csv") as f:
            for line in f.readlines()[1:]:
                parts = line.strip().split(",")
                if len(parts) >= 5:
                    rows.append([int(float(p)) for p in parts[:5]])
    finally:
        for ext in (".csv", ".html"):
            if os.path.exists(prefix + ext):
                os.remove(prefix + ext)
    return rows


def summarize(rows):
    closed = max((r[1] for r in rows), default=0)
    peak = max((r[3] for r in rows), default=0)
    available = all(r[4] for r in rows) if rows else False
    return closed, peak, available


def slow_headers(srv):
    rows = slowhttptest(srv, "-H", {"-c": 200, "-r": 100, "-i": 1}, 10)
    closed, peak, available = summarize(rows)
    return (f"slowhttptest -H: {closed} of its connections closed by the server, "
            f"peak {peak} connected, service available throughout: {available}",
            closed > 0 and available)


def open_sockets(srv):
    fds = 0
    for fd in os.listdir(f"/proc/{srv.proc.pid}/fd"):
        try:
            fds += os.readlink(f"/proc/{srv.proc.pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return fds


def slow_read(srv):
    # The server's own sockets tell: once the responses sit in the kernel's send buffer the
    # connection is idle and closed at the idle deadline (the kernel finishes the slow send);
    # a response too big for the buffer stalls the writer and is dropped at the write deadline.
    baseline, peak = open_sockets(srv), 0
    done = threading.Event()

    def watch():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, open_sockets(srv))
            time.sleep(0.2)

    t = threading.Thread(target=watch)
    t.start()
    rows = slowhttptest(srv, "-X", {"-c": 100, "-r": 100, "-k": 10, "-n": 3, "-w": 1, "-y": 16,
                                    "-z": 1, "path": "/debug/pprof/"}, 10)
    done.set()
    t.join()
    _, _, available = summarize(rows)
    end = open_sockets(srv)
    return (f"slowhttptest -X, 100 slow readers for 10 s: server sockets peak {peak}, "
            f"{end} at the end (baseline {baseline}); service available throughout: {available}",
            peak > baseline + 50 and end <= baseline + 10 and available)


def slow_body(srv):
    rows = slowhttptest(srv, "-B", {"-c": 100, "-r": 100, "-i": 4, "-s": 65536,
                                    "path": "/debug/pprof/symbol"}, 10)
    closed, peak, available = summarize(rows)
    return (f"slowhttptest -B (a body byte every 4 s): {closed} cut at the body deadline, "
            f"service available throughout: {available}", closed > 0 and available)


def stalled_body_h1(srv):
    with connect(srv.port) as s:
        s.sendall(b"POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        raw, took, closed = read_all(s, 8)
    st = statuses(raw)
    return (f"{st or 'no answer'} after {took:.1f} s, closed: {closed}",
            st == [408] and closed and took < 4)


def stalled_body_h2(srv):
    with h2_open(srv.port) as s:
        block = b"\x83\x86\x04" + hpack_str("/debug/pprof/symbol") + b"\x01" + hpack_str("x") \
            + b"\x00" + hpack_str("content-length") + hpack_str("100")
        s.sendall(frame(1, 0x4, 1, block))
        start = time.monotonic()
        raw, _, _ = read_all(s, 3.5)
    kinds = h2_frames(raw)
    answered = 1 in kinds[1:] or 3 in kinds  # HEADERS after the server's SETTINGS, or RST_STREAM
    return (f"stream answered (HEADERS/RST_STREAM) within {time.monotonic() - start:.1f} s: "
            f"{answered}", answered)


def rapid_reset(srv):
    with h2_open(srv.port) as s:
        batch = b"".join(frame(1, 0x5, sid, get_block()) + frame(3, 0, sid, struct.pack(">I", 8))
                         for sid in range(1, 20001, 2))
        sent, closed = flood(s, batch, 3)
        raw, _, closed2 = read_all(s, 2)
    goaway = 7 in h2_frames(raw)
    return (f"10,000 HEADERS+RST_STREAM pairs: GOAWAY {goaway}, closed {closed or closed2}",
            goaway or closed or closed2)


def continuation_flood(srv):
    with h2_open(srv.port) as s:
        s.sendall(frame(1, 0x1, 1, get_block()))  # HEADERS without END_HEADERS
        junk = frame(9, 0, 1, b"\x00" + hpack_str("x-junk") + b"\x7e" + b"a" * 126) * 100
        sent, closed = flood(s, junk, 4)
        raw, _, closed2 = read_all(s, 2)
    goaway = 7 in h2_frames(raw)
    return (f"{sent / 1e6:.1f} MB of CONTINUATION accepted before the close; GOAWAY {goaway}",
            (closed or closed2) and sent < 8_000_000)


def settings_flood(srv):
    with h2_open(srv.port) as s:
        sent, closed = flood(s, frame(4, 0, 0, struct.pack(">HI", 3, 100)) * 1000, 4)
        _, _, closed2 = read_all(s, 1)
    return (f"{sent // 15:,} SETTINGS frames sent without reading the ACKs; closed "
            f"{closed or closed2}", True)


def ping_flood(srv):
    with h2_open(srv.port) as s:
        sent, closed = flood(s, frame(6, 0, 0, b"12345678") * 1000, 4)
        _, _, closed2 = read_all(s, 1)
    return (f"{sent // 17:,} PINGs sent without reading the ACKs; closed {closed or closed2}", True)


def hpack_bomb(srv):
    with h2_open(srv.port) as s:
        # One 4,000-byte header enters the dynamic table (index 62; it fits the default 4 KiB
        # table), then 4,000 references to it: 16 MB of headers from 8 KB on the wire.
        big = b"\x40" + hpack_str("x-bomb") + b"\x7f\xa1\x1e" + b"a" * 4000
        s.sendall(frame(1, 0x5, 1, get_block() + big))
        s.sendall(frame(1, 0x5, 3, get_block() + b"\xbe" * 4000))
        raw, _, closed = read_all(s, 3)
    kinds = h2_frames(raw)
    refused = 3 in kinds or 7 in kinds or closed or b"431" in raw
    return f"frames back: {sorted(set(kinds))}, closed {closed}", refused


def h2load_streams(srv):
    out = subprocess.run(["h2load", "-n", "100000", "-c", "10", "-m", "100", "-T", "20",
                          f"http://{HOST}:{srv.port}/healthz"], capture_output=True, text=True,
                         timeout=60).stdout
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
                  out)
    if not m:
        return "h2load printed no summary", False
    total, done, ok, failed = map(int, m.groups())
    return f"h2load -c10 -m100: {ok:,} of {total:,} succeeded, {failed} failed", ok == total


def goaway_ignored(srv):
    with h2_open(srv.port) as s:
        raw, took, closed = read_all(s, 10)
    return (f"GOAWAY sent: {7 in h2_frames(raw)}, dropped after {took:.1f} s",
            closed and took < 3 + 2 + 1.5)


def zero_window(srv):
    with h2_open(srv.port, struct.pack(">HI", 4, 0)) as s:
        s.sendall(frame(1, 0x5, 1, get_block()))
        raw, took, closed = read_all(s, 10)
    return f"dropped after {took:.1f} s", closed and took < 4


def half_close(srv):
    lost = 0
    for _ in range(1000):
        with connect(srv.port) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            raw, _, _ = read_all(s, 3)
            lost += not raw.startswith(b"HTTP/1.1 200")
    return f"1,000 requests then FIN: {1000 - lost} answered", lost == 0


def over_the_limit(srv, conns):
    """Opens `conns` silent connections at once, then looks at each without blocking: a 503
    already there, nothing yet (held by the server, or waiting in its backlog), or closed."""
    socks = [connect(srv.port) for _ in range(conns)]
    time.sleep(0.5)
    held = got_503 = closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            data = s.recv(64)
            got_503 += data.startswith(b"HTTP/1.1 503")
            closed += not data.startswith(b"HTTP/1.1 503")
        except (BlockingIOError, TimeoutError):
            held += 1
        except OSError:
            closed += 1
        s.close()
    return held, got_503, closed


def connection_limit(srv):
    held, got_503, closed = over_the_limit(srv, 300)
    return (f"300 silent conns at --max-connections 256: {held} held, {got_503} answered 503",
            held == 256 and got_503 == 44 and closed == 0)


def fd_exhaustion(binary):
    srv = Server(binary, ["--max-connections", "1000", "--header-read-timeout", "30s"], nofile=64)
    try:
        held, got_503, closed = over_the_limit(srv, 80)
        # 64 descriptors leave room for 32 connections (fd_limit::RESERVED); more held ones
        # would be clients stuck in the backlog with no answer.
        return (f"ulimit -n 64, --max-connections 1000: {held} held, {got_503} answered 503; "
                f"probe {probe(srv.port)}",
                held <= 32 and got_503 == 80 - held and closed == 0), srv.cpu(), srv.rss_mib()
    finally:
        srv.stop()


ATTACKS = [
    ("malformed requests", "4xx or close", malformed),
    ("request smuggling (CL.TE, TE.CL, TE.TE, duplicate CL...)", "no smuggled request answered", smuggling),
    ("slowloris: silent connections", "closed at the header deadline (2 s)", silent),
    ("slowloris: partial HTTP/2 preface", "closed at the header deadline (2 s)", partial_preface),
    ("slowloris: dripping headers", "cut at the header deadline, others served", slow_headers),
    ("slow read", "closed at the idle (3 s) or write (2 s) deadline", slow_read),
    ("slow body (R-U-Dead-Yet)", "cut at the body deadline (2 s)", slow_body),
    ("stalled body, HTTP/1", "408 at the body deadline, closed", stalled_body_h1),
    ("stalled body, HTTP/2", "answered at the body deadline", stalled_body_h2),
    ("HTTP/2 rapid reset", "GOAWAY or close, others served", rapid_reset),
    ("HTTP/2 CONTINUATION flood", "closed early", continuation_flood),
    ("HTTP/2 SETTINGS flood", "bounded CPU and memory", settings_flood),
    ("HTTP/2 PING flood", "bounded CPU and memory", ping_flood),
    ("HPACK bomb", "refused (reset, GOAWAY or 431)", hpack_bomb),
    ("HTTP/2 stream load (h2load)", "every request answered", h2load_streams),
    ("HTTP/2 GOAWAY/PING never acked", "dropped: unanswered ping (2 + 2 s) or idle + close (3 + 2 s)",
     goaway_ignored),
    ("HTTP/2 window never opened", "dropped at the write deadline (2 s)", zero_window),
    ("half-close after the request", "every request answered", half_close),
    ("connections over --max-connections", "503 at once for the excess", connection_limit),
]

CPU_BOUND = 5.0  # seconds of server CPU per attack (a spinning core would use the whole row)
RSS_BOUND = 64.0  # MiB after an attack


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    binary = os.path.abspath(args.server)
    rows = []
    for name, expected, attack in ATTACKS:
        if args.only and args.only not in name:
            continue
        print(f"== {name}", file=sys.stderr, flush=True)
        srv = Server(binary)
        try:
            cpu0, t0 = srv.cpu(), time.monotonic()
            observed, ok = attack(srv)
            after = probe(srv.port)
            cpu, rss = srv.cpu() - cpu0, srv.rss_mib()
            ok = ok and after == 200 and cpu < CPU_BOUND and rss < RSS_BOUND \
                and srv.proc.poll() is None
            rows.append((name, expected, observed, cpu, rss, after, time.monotonic() - t0, ok))
        finally:
            srv.stop()
    if not args.only or args.only in "open files exhausted":
        print("== open files exhausted", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        (observed, ok), cpu, rss = fd_exhaustion(binary)
        rows.append(("open files exhausted (ulimit -n 64)", "503 at once, no hang", observed,
                     cpu, rss, 200, time.monotonic() - t0, ok))
    print("| attack | expected | observed | server CPU (s) | RSS after (MiB) | /healthz after | time (s) | as expected |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for name, expected, observed, cpu, rss, after, took, ok in rows:
        print(f"| {name} | {expected} | {observed} | {cpu:.2f} | {rss:.1f} | {after} | "
              f"{took:.1f} | {'yes' if ok else 'NO'} |")
    bad = [r[0] for r in rows if not r[-1]]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} as expected" + (f"; not: {bad}" if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
