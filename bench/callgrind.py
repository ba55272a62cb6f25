"""User-space instructions per request, counted by valgrind's callgrind: reproducible on a busy
machine, where wall-clock figures are not. Each server runs twice under callgrind, serving a
small and a large number of keep-alive /healthz requests, one after another over one
connection; the difference divided by the difference in requests cancels startup, connection
setup and exit. (Over several connections, how many requests one wake-up finds ready depends on
timing, and the count with it: by some hundreds between runs.)
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _drive(port, total, conns):
    """`total` requests over `conns` keep-alive connections, each answered before the next."""
    def worker(n):
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            for _ in range(n):
                s.sendall(REQUEST)
                buf = b""
                while not buf.endswith(b"ok\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        raise RuntimeError("server closed the connection")
                    buf += chunk

    threads = [threading.Thread(target=worker, args=(total // conns,)) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _wait_ready(port, proc, limit=60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited under callgrind")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server not ready under callgrind")


def _run(argv, env, port, requests, conns, out):
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(port, proc)
        _drive(port, requests, conns)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def _functions(out):
    """Self instructions per function from callgrind_annotate."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no", "--threshold=100", out],
                          capture_output=True, text=True, check=True).stdout
    # The per-function table follows the "Ir  file:function" header.
    table = text.split("file:function", 1)[-1]
    costs = {}
    for m in re.finditer(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*?)(?: \[[^\]]*\])?$", table, re.M):
        path, _, name = m.group(2).partition(":")
        if name.startswith("0x"):
            # No symbol (musl's assembly, e.g. memcpy.s): its source file names it.
            name = os.path.basename(path)
        costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def per_request(name, argv, small=2000, large=12000, conns=1, top=0):
    """(instructions per request, [(function, self instructions per request)] top `top`)."""
    port = _free_port()
    env = dict(os.environ, MY_SERVICE_PORT=str(port))
    env.pop("RUST_LOG", None)
    outs = [f"/tmp/callgrind-{name}-{n}-{os.getpid()}.out" for n in (small, large)]
    try:
        counts = [_run(argv, env, port, n, conns, out) for n, out in zip((small, large), outs)]
        per = (counts[1] - counts[0]) / (large - small)
        breakdown = []
        if top:
            a, b = _functions(outs[0]), _functions(outs[1])
            diffs = {k: (b.get(k, 0) - a.get(k, 0)) / (large - small) for k in b}
            breakdown = sorted(diffs.items(), key=lambda kv: -kv[1])[:top]
        return per, breakdown
    finally:
        for out in outs:
            if os.path.exists(out):
                os.remove(out)
