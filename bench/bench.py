#!/usr/bin/env python3
"""httpserver against the Go original, side by side in one run (`make bench`).

Each server runs pinned to core 0, wrk pinned to core 1, loopback only, every phase bounded
in time. Prints one table with ours/Go ratios and writes it into BENCHMARKS.md.
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
import threading
import time
import urllib.request

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
    def __init__(self, name, argv):
        self.name, self.argv = name, argv

    def start(self, pin=True):
        self.port = free_port()
        env = dict(os.environ, MY_SERVICE_PORT=str(self.port))
        env.pop("RUST_LOG", None)
        cmd = (["taskset", "-c", SERVER_CPU] if pin else []) + self.argv
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
        proc = subprocess.Popen(server.argv, env=env, stdout=subprocess.DEVNULL,
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


def wrk(server, conns, seconds):
    """One pinned wrk run; returns (req/s, p50 ms, p99 ms, requests, (user s, system s))."""
    wait_idle()
    u0, s0 = proc_cpu_seconds(server.pid)
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
         server.url()],
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


def measure(server, args):
    r = {}
    print(f"== {server.name}", file=sys.stderr)
    r["binary"] = os.path.getsize(server.argv[0])
    r["start_conn"], r["start_200"] = startup_probe(server, args.startup_runs)
    server.start()
    try:
        time.sleep(1)
        r["idle_rss"] = rss_kib(server.pid)
        wrk(server, 64, args.warmup)  # warm-up
        runs = [wrk(server, 64, args.seconds) for _ in range(args.runs)]
        r["rps64"] = statistics.median(x[0] for x in runs)
        r["p50_64"] = statistics.median(x[1] for x in runs)
        r["p99_64"] = statistics.median(x[2] for x in runs)
        total_reqs = sum(x[3] for x in runs)
        r["user_per_req_us"] = 1e6 * sum(x[4][0] for x in runs) / total_reqs
        r["sys_per_req_us"] = 1e6 * sum(x[4][1] for x in runs) / total_reqs
        r["cpu_per_req_us"] = r["user_per_req_us"] + r["sys_per_req_us"]
        single = [wrk(server, 1, args.single_seconds) for _ in range(args.single_runs)]
        r["rps1"] = statistics.median(x[0] for x in single)
        r["p50_1"] = statistics.median(x[1] for x in single)
        r["p99_1"] = statistics.median(x[2] for x in single)
        r["rps1_all"] = [round(x[0]) for x in single]
        r["rss_loaded"] = rss_kib(server.pid)
        r["rss_peak"] = rss_kib(server.pid, "VmHWM")
        # Profiling overhead: pairs of (plain run, run while /debug/pprof/profile captures),
        # back to back so drift on this shared machine hits both sides of each pair alike.
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
        r["rps64_plain_pairs"] = statistics.median(plain)
        r["rps64_profiling"] = statistics.median(profiled)
        r["profiling_overhead"] = 1 - r["rps64_profiling"] / r["rps64_plain_pairs"]
    finally:
        server.stop()
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


def fmt_ratio(ours, go, better_low):
    if not go:
        return "n/a"
    ratio = ours / go
    return f"{ratio:.2f}x" + (" (lower is better)" if better_low else "")


def table(ours, go, image_sizes):
    rows = [
        ("/healthz req/s, 64 conns (median of runs)", "rps64", "{:,.0f}", False),
        ("  p50 latency, 64 conns (ms)", "p50_64", "{:.3f}", True),
        ("  p99 latency, 64 conns (ms)", "p99_64", "{:.3f}", True),
        ("server CPU per request (us, utime+stime)", "cpu_per_req_us", "{:.2f}", True),
        ("  of which user space (us)", "user_per_req_us", "{:.2f}", True),
        ("  of which kernel (us)", "sys_per_req_us", "{:.2f}", True),
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
    lines = ["| metric | httpserver (Rust) | Go original | ours/Go |", "|---|---:|---:|---:|"]
    for label, key, f, low in rows:
        o, g = ours.get(key), go.get(key)
        ratio = fmt_ratio(o, g, low) if key != "profiling_overhead" else "-"
        lines.append(f"| {label} | {f.format(o)} | {f.format(g)} | {ratio} |")
    lines.append(f"| single-connection runs (req/s) | {ours['rps1_all']} | {go['rps1_all']} | - |")
    for name, size in image_sizes:
        lines.append(f"| image size: {name} | {size} | - | - |")
    return "\n".join(lines)


def analysis(ours, go):
    """What bounds the 64-connection figures, computed from this run's numbers."""
    k, u, t = ours["sys_per_req_us"], ours["user_per_req_us"], ours["cpu_per_req_us"]
    go_t = go["cpu_per_req_us"]
    return f"""## What bounds the 64-connection figures (from this run)

Both servers run on one core, so throughput there is 1 / (server CPU per request).
Ours spends {k:.2f} us of its {t:.2f} us per request in the kernel ({k / t:.0%}): the loopback
TCP read and write of each request/response (`strace -c` on the server under this load counts
one `recvfrom` and one `writev` per request, the minimum without pipelining; the write also
delivers into wrk's socket and wakes it). Our user-space share is {u:.2f} us against Go's {go["user_per_req_us"]:.2f} us
({u / go["user_per_req_us"]:.2f}x). Even with no user-space cost at all, this kernel floor caps
the throughput ratio at {go_t / k:.2f}x and the CPU-per-request ratio at {k / go_t:.2f}x on this
machine."""


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
    ap.add_argument("--image-sizes", default="")
    ap.add_argument("--write", default="")
    args = ap.parse_args()

    started = datetime.datetime.now(datetime.timezone.utc)
    ours = measure(Server("httpserver", [os.path.abspath(args.ours)]), args)
    go = measure(Server("go", [os.path.abspath(args.go), "-logtostderr"]), args)
    result = table(ours, go, image_sizes(args.image_sizes))
    print(result)
    costs = profiling_table(profiling_costs([os.path.abspath(args.ours)], args), args.captures)
    print(costs)
    if args.write:
        doc = f"""# Benchmarks: httpserver (Rust) vs the Go original

Generated by `make bench` on {started:%Y-%m-%d %H:%M} UTC — do not edit by hand; rerun it.

- Machine: {machine()}
- Command: `make bench` ({' '.join(os.path.basename(a) for a in sys.argv)})
- Method: each server pinned to CPU {SERVER_CPU} (`taskset`), wrk pinned to CPU {LOAD_CPU},
  loopback only; CPUs waited idle before every run. 64 keep-alive connections: {args.warmup} s
  warm-up, then {args.runs} x {args.seconds} s, median. One connection: {args.single_runs} x
  {args.single_seconds} s, median (this machine's single-connection results are bimodal; all
  runs listed). Server CPU per request = (utime + stime of the server process over the 64-conn
  runs) / requests, split into user and kernel time. Startup: {args.startup_runs} execs, a socket
  probe polls for the first accepted connection and the first `200` on /healthz, median.
  Profiling overhead: {args.profile_pairs} pairs of back-to-back 64-conn runs, one plain and one
  while `/debug/pprof/profile` captures; 1 - median(profiled) / median(plain).
- Ours: the release musl build (`bin/amd64/httpserver`), default settings.
  Go: `bench/goserver` (net/http + net/http/pprof + glog), Debian's Go, default settings.

{result}

{analysis(ours, go)}

## What profiling costs (this run)

Heap sampling: {args.profile_pairs} pairs of 64-conn runs ({args.seconds} s after a {args.warmup} s warm-up),
each on a fresh server, with `--heap-sample-rate` at its default and at 0, medians. Trace: a
6 s `/debug/pprof/trace` while wrk runs 64 connections, against a plain 6 s run just before;
peak RSS is the process's VmHWM. Captures: {args.captures} alternating 1 s CPU profiles and
flame graphs, each followed by a heap profile, on an idle server after three warm-up captures.

{costs}
"""
        with open(args.write, "w") as f:
            f.write(doc)


if __name__ == "__main__":
    main()
