#!/usr/bin/env python3
"""httpserver against nginx and the Go original, side by side in one run (`make bench`).

Each server runs pinned to core 0, the load (wrk, h2load) pinned to core 1, loopback only,
every phase bounded in time. nginx (one worker, `return 200`) is the practical limit of this
loopback; the Go original is what we replace. Also: user-space instructions per request under
callgrind, what profiling costs, and the release profile's LTO / codegen-units trade-off.
Prints the tables and writes them into BENCHMARKS.md.
"""

import argparse
import datetime
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import callgrind
import image_rebuild
import allocator
import lto

SERVER_CPU, LOAD_CPU = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HEALTHZ_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_busy_fraction(interval=0.5):
    def snap():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        idle = vals[3] + vals[4]
        return idle, sum(vals)

    i0, t0 = snap()
    time.sleep(interval)
    i1, t1 = snap()
    return 1 - (i1 - i0) / max(1, t1 - t0)


def wait_idle(limit=15.0, threshold=0.10):
    """Waits (bounded) until the CPUs are mostly idle, so runs start from the same state."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cpu_busy_fraction() < threshold:
            return
    print(f"  note: CPUs still busy after {limit:.0f} s; running anyway", file=sys.stderr)


def proc_cpu_seconds(pid):
    """(user, system) CPU seconds of the process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def rss_kib(pid, key="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Server:
    """A server that takes its port from MY_SERVICE_PORT (ours, the Go original)."""

    def __init__(self, name, argv, pprof=True, h2c=False):
        self.name, self.argv = name, argv
        self.pprof = pprof  # serves /debug/pprof/profile
        self.h2c = h2c  # serves HTTP/2 cleartext (prior knowledge) on its port

    def argv_for(self, port):
        return self.argv

    def h2c_url(self):
        return self.url() if self.h2c else None

    def start(self, pin=True):
        self.port = free_port()
        env = dict(os.environ, MY_SERVICE_PORT=str(self.port))
        env.pop("RUST_LOG", None)
        cmd = (["taskset", "-c", SERVER_CPU] if pin else []) + self.argv_for(self.port)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if http_ok(self.port):
                return self
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"{self.name} did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path="/healthz"):
        return f"http://127.0.0.1:{self.port}{path}"


NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log crit;
pid {dir}/nginx-{port}.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{h2_port} http2;
        location = /healthz {{ default_type "text/plain; charset=utf-8"; return 200 "ok\\n"; }}
    }}
}}
"""


class Nginx(Server):
    """Debian's nginx-light as the limit anchor: one process (master_process off, so its CPU
    time is the server's), `return 200 "ok\\n"`, no access log, keep-alive unbounded like ours;
    h2c on a second port (nginx's `http2` listener speaks only HTTP/2)."""

    def __init__(self, workdir):
        super().__init__("nginx", ["/usr/sbin/nginx"], pprof=False, h2c=True)
        self.workdir = workdir

    def argv_for(self, port):
        self.h2_port = free_port()
        conf = os.path.join(self.workdir, f"nginx-{port}.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.workdir, port=port, h2_port=self.h2_port))
        return ["/usr/sbin/nginx", "-p", self.workdir, "-c", conf, "-e",
                os.path.join(self.workdir, "error.log")]

    def h2c_url(self):
        return f"http://127.0.0.1:{self.h2_port}/healthz"


def http_ok(port, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(HEALTHZ_REQUEST)
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def startup_probe(server, runs):
    """Median time from exec to the first accepted connection and to the first 200."""
    to_conn, to_200 = [], []
    for _ in range(runs):
        port = free_port()
        env = dict(os.environ, MY_SERVICE_PORT=str(port))
        t0 = time.perf_counter_ns()
        proc = subprocess.Popen(server.argv_for(port), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        t_conn = t_ok = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and t_ok is None:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                continue
            with s:
                if t_conn is None:
                    t_conn = time.perf_counter_ns()
                s.sendall(HEALTHZ_REQUEST)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    t_ok = time.perf_counter_ns()
        proc.terminate()
        proc.wait(timeout=10)
        if t_ok is None:
            raise RuntimeError(f"{server.name}: no 200 within 10 s of exec")
        to_conn.append((t_conn - t0) / 1e6)
        to_200.append((t_ok - t0) / 1e6)
    return statistics.median(to_conn), statistics.median(to_200)


LAT_RE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(server, conns, seconds, pin=True):
    """One wrk run, pinned to the load CPU unless told otherwise; returns (req/s, p50 ms,
    p99 ms, requests, (user s, system s))."""
    wait_idle()
    u0, s0 = proc_cpu_seconds(server.pid)
    out = subprocess.run(
        (["taskset", "-c", LOAD_CPU] if pin else []) +
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", server.url()],
        capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    u1, s1 = proc_cpu_seconds(server.pid)
    cpu = (u1 - u0, s1 - s0)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  warning ({server.name}): {out}", file=sys.stderr)
    lat = {}
    for pct, val, unit in LAT_RE.findall(out):
        lat[pct] = float(val) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    return rps, lat.get("50"), lat.get("99"), reqs, cpu


H2LOAD_RE = re.compile(r"finished in [\d.]+s, ([\d.]+) req/s")


def h2load(server, conns, streams, seconds):
    """One pinned h2load run over h2c; returns (req/s, requests, (user s, system s))."""
    wait_idle()
    u0, s0 = proc_cpu_seconds(server.pid)
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "h2load", "-t1", f"-c{conns}", f"-m{streams}",
         f"-D{seconds}", server.h2c_url()],
        capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    u1, s1 = proc_cpu_seconds(server.pid)
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if not m or m.group(1) != m.group(2):
        print(f"  warning ({server.name}): {out}", file=sys.stderr)
    return float(H2LOAD_RE.search(out).group(1)), int(m.group(2)), (u1 - u0, s1 - s0)


def rounds(servers, n, run):
    """`n` rounds of `run(server)` over all servers, interleaved so that drift on this shared
    machine hits every server alike; returns {name: [results]}."""
    out = {s.name: [] for s in servers}
    for _ in range(n):
        for s in servers:
            out[s.name].append(run(s))
    return out


def cpu_per_request(runs, index_reqs, index_cpu):
    total = sum(x[index_reqs] for x in runs)
    user = 1e6 * sum(x[index_cpu][0] for x in runs) / total
    system = 1e6 * sum(x[index_cpu][1] for x in runs) / total
    return user, system


def measure(servers, args):
    """Every figure of the main table, for every server, runs interleaved."""
    res = {s.name: {} for s in servers}
    for s in servers:
        print(f"== {s.name}: startup", file=sys.stderr)
        r = res[s.name]
        r["binary"] = os.path.getsize(s.argv[0])
        r["start_conn"], r["start_200"] = startup_probe(s, args.startup_runs)
    for s in servers:
        s.start()
    try:
        time.sleep(1)
        for s in servers:
            res[s.name]["idle_rss"] = rss_kib(s.pid)
            wrk(s, 64, args.warmup)
        print("== 64 connections (wrk)", file=sys.stderr)
        for name, runs in rounds(servers, args.runs, lambda s: wrk(s, 64, args.seconds)).items():
            r = res[name]
            r["rps64"] = statistics.median(x[0] for x in runs)
            r["p50_64"] = statistics.median(x[1] for x in runs)
            r["p99_64"] = statistics.median(x[2] for x in runs)
            r["user_per_req_us"], r["sys_per_req_us"] = cpu_per_request(runs, 3, 4)
            r["cpu_per_req_us"] = r["user_per_req_us"] + r["sys_per_req_us"]
        print("== HTTP/2 cleartext (h2load)", file=sys.stderr)
        h2 = [s for s in servers if s.h2c]
        for name, runs in rounds(h2, args.runs, lambda s: h2load(s, 64, 10, args.seconds)).items():
            r = res[name]
            r["h2_rps"] = statistics.median(x[0] for x in runs)
            user, system = cpu_per_request(runs, 1, 2)
            r["h2_cpu_per_req_us"] = user + system
        print("== 1 connection (wrk)", file=sys.stderr)
        for name, runs in rounds(servers, args.single_runs,
                                 lambda s: wrk(s, 1, args.single_seconds)).items():
            r = res[name]
            r["rps1"] = statistics.median(x[0] for x in runs)
            r["p50_1"] = statistics.median(x[1] for x in runs)
            r["p99_1"] = statistics.median(x[2] for x in runs)
            r["rps1_all"] = [round(x[0]) for x in runs]
        for s in servers:
            res[s.name]["rss_loaded"] = rss_kib(s.pid)
            res[s.name]["rss_peak"] = rss_kib(s.pid, "VmHWM")
        for s in servers:
            if s.pprof:
                res[s.name].update(profiling_overhead(s, args))
    finally:
        for s in servers:
            s.stop()
    return res


def profiling_overhead(server, args):
    """Pairs of (plain run, run while /debug/pprof/profile captures), back to back so drift
    on this shared machine hits both sides of each pair alike."""
    print(f"== {server.name}: profiling overhead", file=sys.stderr)
    secs = args.seconds
    plain, profiled = [], []
    for _ in range(args.profile_pairs):
        plain.append(wrk(server, 64, secs)[0])
        result = {}

        def capture():
            url = server.url(f"/debug/pprof/profile?seconds={secs + 2}")
            with urllib.request.urlopen(url, timeout=secs + 60) as resp:
                result["bytes"] = len(resp.read())

        wait_idle()
        t = threading.Thread(target=capture)
        t.start()
        time.sleep(0.5)
        profiled.append(wrk(server, 64, secs)[0])
        t.join(timeout=secs + 90)
        if not result.get("bytes"):
            raise RuntimeError(f"{server.name}: the profile capture returned nothing")
    r = {"rps64_plain_pairs": statistics.median(plain),
         "rps64_profiling": statistics.median(profiled)}
    r["profiling_overhead"] = 1 - r["rps64_profiling"] / r["rps64_plain_pairs"]
    return r


def get(server, path, timeout):
    with urllib.request.urlopen(server.url(path), timeout=timeout) as resp:
        return resp.read()


def profiling_costs(argv, args):
    """Ours only: heap sampling on vs off, a trace under full load (throughput, peak RSS,
    size), and RSS after many captures. Each server pinned to CPU 0, wrk to CPU 1."""
    r = {}
    print("== profiling costs", file=sys.stderr)
    # Heap sampling at Go's default rate vs off: back-to-back pairs, fresh servers each time.
    on, off = [], []
    for _ in range(args.profile_pairs):
        for runs, extra in ((on, []), (off, ["--heap-sample-rate", "0"])):
            srv = Server("httpserver", argv + extra).start()
            try:
                wrk(srv, 64, args.warmup)
                runs.append(wrk(srv, 64, args.seconds)[0])
            finally:
                srv.stop()
    r["rps_heap_on"], r["rps_heap_off"] = statistics.median(on), statistics.median(off)
    r["heap_overhead"] = 1 - r["rps_heap_on"] / r["rps_heap_off"]

    srv = Server("httpserver", argv).start()
    try:
        wrk(srv, 64, args.warmup)
        # A 6 s trace while wrk runs at full load: throughput against a plain run just before.
        plain = wrk(srv, 64, 6)[0]
        hwm_before = rss_kib(srv.pid, "VmHWM")
        got = {}
        t = threading.Thread(target=lambda: got.update(body=get(srv, "/debug/pprof/trace?seconds=6", 120)))
        wait_idle()
        t.start()
        time.sleep(0.2)
        during = wrk(srv, 64, 6)[0]
        t.join(timeout=120)
        r["rps_trace_plain"], r["rps_trace_during"] = plain, during
        r["trace_drop"] = 1 - during / plain
        r["trace_bytes"] = len(got.get("body", b""))
        r["trace_peak_rss"] = max(hwm_before, rss_kib(srv.pid, "VmHWM"))
        # RSS after repeated captures: CPU profiles, flame graphs and heap profiles, 1 s each.
        for _ in range(3):
            get(srv, "/debug/pprof/profile?seconds=1", 60)
        r["rss_before_captures"] = rss_kib(srv.pid)
        for i in range(args.captures):
            get(srv, "/debug/pprof/" + ("profile" if i % 2 else "flamegraph") + "?seconds=1", 60)
            get(srv, "/debug/pprof/heap", 60)
        r["rss_after_captures"] = rss_kib(srv.pid)
    finally:
        srv.stop()
    return r


def profiling_table(r, captures):
    rows = [
        ("req/s, 64 conns, heap sampling at 512 KiB (default)", f"{r['rps_heap_on']:,.0f}"),
        ("req/s, 64 conns, heap sampling off", f"{r['rps_heap_off']:,.0f}"),
        ("heap sampling overhead (throughput lost)", f"{r['heap_overhead']:.1%}"),
        ("req/s, 64 conns, 6 s plain", f"{r['rps_trace_plain']:,.0f}"),
        ("req/s, 64 conns, 6 s during a trace capture", f"{r['rps_trace_during']:,.0f}"),
        ("throughput lost during the trace", f"{r['trace_drop']:.1%}"),
        ("trace size (bytes of JSON, --max-trace-bytes 64 MiB)", f"{r['trace_bytes']:,}"),
        ("peak RSS of the process, trace under load included (KiB)", f"{r['trace_peak_rss']:,}"),
        (f"RSS before {captures} captures (KiB)", f"{r['rss_before_captures']:,}"),
        (f"RSS after {captures} CPU/flame-graph + {captures} heap captures (KiB)",
         f"{r['rss_after_captures']:,}"),
    ]
    lines = ["| metric (httpserver only) | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def fmt_ratio(a, b, better_low):
    if not a or not b:
        return "-"
    return f"{a / b:.2f}x" + (" (lower is better)" if better_low else "")


ROWS = [
    ("/healthz req/s, 64 conns (wrk, median of runs)", "rps64", "{:,.0f}", False),
    ("  p50 latency, 64 conns (ms)", "p50_64", "{:.3f}", True),
    ("  p99 latency, 64 conns (ms)", "p99_64", "{:.3f}", True),
    ("server CPU per request (us, utime+stime)", "cpu_per_req_us", "{:.2f}", True),
    ("  of which user space (us)", "user_per_req_us", "{:.2f}", True),
    ("  of which kernel (us)", "sys_per_req_us", "{:.2f}", True),
    ("/healthz req/s, HTTP/2 cleartext, 64 conns x 10 streams (h2load)", "h2_rps", "{:,.0f}", False),
    ("  server CPU per request over h2c (us)", "h2_cpu_per_req_us", "{:.2f}", True),
    ("req/s, 1 connection (median of runs)", "rps1", "{:,.0f}", False),
    ("  p50 latency, 1 conn (ms)", "p50_1", "{:.3f}", True),
    ("  p99 latency, 1 conn (ms)", "p99_1", "{:.3f}", True),
    ("idle RSS (KiB)", "idle_rss", "{:,}", True),
    ("RSS after load (KiB)", "rss_loaded", "{:,}", True),
    ("peak RSS (KiB)", "rss_peak", "{:,}", True),
    ("binary size (bytes)", "binary", "{:,}", True),
    ("exec to first accepted connection (ms, median)", "start_conn", "{:.2f}", True),
    ("exec to first 200 on /healthz (ms, median)", "start_200", "{:.2f}", True),
    ("req/s, 64 conns, runs paired with the profiled ones", "rps64_plain_pairs", "{:,.0f}", False),
    ("req/s, 64 conns, during a CPU profile", "rps64_profiling", "{:,.0f}", False),
    ("profiling overhead (throughput lost)", "profiling_overhead", "{:.1%}", True),
]


def table(res, image_sizes):
    ours, nginx, go = res["httpserver"], res["nginx"], res["go"]
    lines = ["| metric | httpserver (Rust) | nginx | Go original | ours/nginx | ours/Go |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, key, f, low in ROWS:
        cells = [f.format(r[key]) if key in r else "-" for r in (ours, nginx, go)]
        ratios = ["-", "-"] if key == "profiling_overhead" else \
            [fmt_ratio(ours.get(key), other.get(key), low) for other in (nginx, go)]
        lines.append(f"| {label} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    lines.append(f"| single-connection runs (req/s) | {ours['rps1_all']} | {nginx['rps1_all']} | "
                 f"{go['rps1_all']} | - | - |")
    for name, size in image_sizes:
        lines.append(f"| image size: {name} | {size} | - | - | - | - |")
    return "\n".join(lines)


def analysis(res):
    """What bounds the 64-connection figures, computed from this run's numbers."""
    ours, nginx, go = res["httpserver"], res["nginx"], res["go"]
    k, u, t = ours["sys_per_req_us"], ours["user_per_req_us"], ours["cpu_per_req_us"]
    nk, nu = nginx["sys_per_req_us"], nginx["user_per_req_us"]
    gt, target = go["cpu_per_req_us"], 1.6  # issue 9's target ratio against Go
    return f"""## What bounds the 64-connection figures (from this run)

Every server runs on one core, so throughput there is 1 / (server CPU per request). The
kernel's part is the loopback TCP read and write of each request and response (one `recvfrom`
and one `writev` per request for ours, the minimum without pipelining; the write also delivers
into wrk's socket and wakes it): {k:.2f} us of ours ({k / t:.0%} of {t:.2f} us), {nk:.2f} us of
nginx's, {go["sys_per_req_us"]:.2f} us of Go's. User space: ours {u:.2f} us, nginx {nu:.2f} us,
Go {go["user_per_req_us"]:.2f} us. With the kernel's share fixed, even a server with no
user-space cost at all would do at most {t / k:.2f}x our throughput here: what is left to win is
our {u:.2f} us, against nginx's {nu:.2f} us.

Against Go: its {gt:.2f} us per request make {go["rps64"]:,.0f} req/s. {target:.1f}x Go would
need {gt / target:.2f} us per request in all, that is {gt / target - k:.2f} us of user space beside
our kernel share; nginx itself, the practical limit here, does {nginx["rps64"] / go["rps64"]:.2f}x
Go in this run, and ours {ours["rps64"] / go["rps64"]:.2f}x."""


def callgrind_section(ours_binary):
    per, top = callgrind.per_request("ours", [ours_binary, "--listen", "127.0.0.1",
                                              "--workers", "1"], top=15)
    rows = "\n".join(f"| `{name}` | {cost:,.0f} |" for name, cost in top)
    return per, f"""## User-space instructions per request (callgrind)

`valgrind --tool=callgrind` counts the instructions the server executes; two runs serving
2,000 and 12,000 keep-alive `/healthz` requests, one after another over one connection, the
difference divided by 10,000, so startup, connection setup and exit cancel out. Reproducible
where wall-clock time is not: **{per:,.0f} instructions per request**. Where they go (self cost per request, top 15):

| function | instructions / request |
|---|---:|
{rows}
"""


def image_sizes(path):
    try:
        with open(path) as f:
            return [tuple(line.rstrip("\n").split("\t", 1)) for line in f if "\t" in line]
    except OSError:
        return []


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024 // 1024
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    go_v = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    rust_v = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} x {model}, {mem} GiB RAM, Linux {platform.release()}; "
            f"{rust_v}; {go_v}; {wrk_v.strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--go", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--single-runs", type=int, default=5)
    ap.add_argument("--single-seconds", type=int, default=5)
    ap.add_argument("--startup-runs", type=int, default=20)
    ap.add_argument("--profile-pairs", type=int, default=3)
    ap.add_argument("--captures", type=int, default=100)
    ap.add_argument("--lto-runs", type=int, default=2, help="0 skips the LTO study")
    ap.add_argument("--allocator-runs", type=int, default=3, help="0 skips the allocator study")
    ap.add_argument("--image-sizes", default="")
    ap.add_argument("--rebuilds", action="store_true",
                    help="time warm image rebuilds (needs an engine: bench/run.sh brings one up)")
    ap.add_argument("--write", default="")
    args = ap.parse_args()

    started = datetime.datetime.now(datetime.timezone.utc)
    ours_bin = os.path.abspath(args.ours)
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as workdir:
        servers = [Server("httpserver", [ours_bin], h2c=True), Nginx(workdir),
                   Server("go", [os.path.abspath(args.go), "-logtostderr"])]
        res = measure(servers, args)
    result = table(res, image_sizes(args.image_sizes))
    print(result)
    instr, instr_section = callgrind_section(ours_bin)
    print(f"callgrind: {instr:,.0f} instructions per request")
    costs = profiling_table(profiling_costs([ours_bin], args), args.captures)
    print(costs)
    lto_section = ""
    if args.lto_runs:
        results = lto.study(lambda name, binary: Server(name, [binary]), wrk, rounds,
                            args.lto_runs, args.seconds)
        lto_section = lto_doc(lto.table(results), args)
        print(lto.table(results))
    allocator_section = ""
    if args.allocator_runs:
        allocators = allocator.table(allocator.study(sys.modules[__name__], ours_bin,
                                                     args.allocator_runs, args.seconds))
        print(allocators)
        allocator_section = f"""## The allocator: musl's malloc or mimalloc (this run)

{allocator.__doc__.strip()} {args.allocator_runs} x {args.seconds} s per allocator and setup.

{allocators}
"""
    rebuild_section = ""
    if args.rebuilds:
        rebuilds = image_rebuild.table(image_rebuild.study(os.getcwd()))
        print(rebuilds)
        rebuild_section = f"""## The image loop: warm rebuilds (this run)

{image_rebuild.__doc__.strip()}

{rebuilds}
"""
    if args.write:
        with open(args.write, "w") as f:
            sections = [document(started, args, result, res, instr_section, costs, lto_section),
                        allocator_section, rebuild_section]
            f.write("\n".join(s for s in sections if s))  # a blank line before each heading


def lto_doc(table_md, args):
    return f"""## The release profile: LTO and codegen units (this run)

{lto.__doc__.strip()}
Warm rebuild: median of two after touching `src/lib.rs`; throughput: {args.lto_runs} x
{args.seconds} s per variant, interleaved, median.

{table_md}
"""


def document(started, args, result, res, instr_section, costs, lto_section):
    return f"""# Benchmarks: httpserver (Rust) vs nginx and the Go original

Generated by `make bench` on {started:%Y-%m-%d %H:%M} UTC — do not edit by hand; rerun it.

- Machine: {machine()}
- Command: `make bench` ({' '.join(os.path.basename(a) for a in sys.argv)})
- Method: each server pinned to CPU {SERVER_CPU} (`taskset`), wrk and h2load pinned to CPU
  {LOAD_CPU}, loopback only; CPUs waited idle before every run; runs interleaved across the
  servers (ours, nginx, Go, ours, ...) so drift hits all alike. 64 keep-alive connections:
  {args.warmup} s warm-up, then {args.runs} x {args.seconds} s, median. HTTP/2: h2load, 64
  connections x 10 concurrent streams, {args.runs} x {args.seconds} s (the Go original has no
  h2c). One connection: {args.single_runs} x {args.single_seconds} s, median (this machine's
  single-connection results are bimodal; all runs listed). Server CPU per request = (utime +
  stime of the server process over the runs) / requests. Startup: {args.startup_runs} execs, a
  socket probe polls for the first accepted connection and the first `200` on /healthz, median.
  Profiling overhead: {args.profile_pairs} pairs of back-to-back 64-conn runs, one plain and one
  while `/debug/pprof/profile` captures; 1 - median(profiled) / median(plain).
- Ours: the release musl build (`bin/amd64/httpserver`), default settings. nginx: Debian's
  nginx-light, one process, `return 200 "ok\\n"`, no access log. Go: `bench/goserver` (net/http
  + net/http/pprof + glog), Debian's Go, default settings.

{result}

{analysis(res)}

{instr_section}
## What profiling costs (this run)

Heap sampling: {args.profile_pairs} pairs of 64-conn runs ({args.seconds} s after a {args.warmup} s warm-up),
each on a fresh server, with `--heap-sample-rate` at its default and at 0, medians. Trace: a
6 s `/debug/pprof/trace` while wrk runs 64 connections, against a plain 6 s run just before;
peak RSS is the process's VmHWM. Captures: {args.captures} alternating 1 s CPU profiles and
flame graphs, each followed by a heap profile, on an idle server after three warm-up captures.

{costs}

{lto_section}"""


if __name__ == "__main__":
    main()
