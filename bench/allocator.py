"""The allocator, a build choice: musl's malloc (`make build`'s binary) against mimalloc (the
same release profile with `--features mimalloc`, C compiled by Debian's x86_64-linux-musl-gcc
as in the image builder), both with the heap profiler's sampling on, as shipped. Two setups,
each with a fresh server per allocator and runs interleaved across them: one core (the server
pinned to one CPU with `--workers 1`, wrk pinned to the other) and two workers on both cores
(server and wrk unpinned, sharing them). Figures: req/s (64 keep-alive connections on /healthz,
median), server CPU per request (utime + stime over the runs / requests), and peak RSS
(VmHWM) after the load, once idle, and again after an allocation-heavier load (64 connections
asking `/debug/pprof/goroutine?debug=2` and `/debug/pprof/heap?debug=1`, which render text).
"""

import os
import statistics
import subprocess
import sys

import lto

SETUPS = [("1 core, --workers 1", True, ["--workers", "1"]),
          ("2 workers, 2 cores", False, ["--workers", "2"])]
HEAVY_PATHS = ["/debug/pprof/goroutine?debug=2", "/debug/pprof/heap?debug=1"]


def mimalloc_binary():
    """The release binary with mimalloc, in the LTO study's target directory for that variant
    (whichever of the two studies runs first builds it)."""
    target_dir = os.path.abspath("target/lto-study/fat-1mimalloc")
    lto._cargo("fat", 1, "mimalloc", target_dir)
    return os.path.join(target_dir, lto.TRIPLE, "release", "httpserver")


def _heavy(server, bench, seconds):
    """wrk on the text-rendering debug paths (one wrk per path), the server's peak RSS after."""
    procs = [subprocess.Popen(["wrk", "-t1", "-c32", f"-d{seconds}s", server.url(p)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for p in HEAVY_PATHS]
    for p in procs:
        p.wait(timeout=seconds + 30)
    return bench.rss_kib(server.pid, "VmHWM")


def study(bench, musl_binary, runs, seconds):
    """bench is the bench module (Server, wrk, rounds, rss_kib). One dict per (setup, allocator)."""
    binaries = [("musl malloc", musl_binary), ("mimalloc", mimalloc_binary())]
    results = []
    for setup, pin, flags in SETUPS:
        print(f"== allocators: {setup}", file=sys.stderr, flush=True)
        servers = [bench.Server(name, [binary, *flags]) for name, binary in binaries]
        for s in servers:
            s.start(pin=pin)
        try:
            def run(s, conns, secs):
                return bench.wrk(s, conns, secs, pin=pin)
            for s in servers:
                run(s, 64, 3)
            by_name = bench.rounds(servers, runs, lambda s: run(s, 64, seconds))
            idle = {s.name: bench.rss_kib(s.pid, "VmHWM") for s in servers}
            heavy = {s.name: _heavy(s, bench, seconds) for s in servers}
        finally:
            for s in servers:
                s.stop()
        for name, _ in binaries:
            r = by_name[name]
            results.append({
                "setup": setup, "allocator": name,
                "rps": statistics.median(x[0] for x in r),
                "cpu_us": 1e6 * sum(sum(x[4]) for x in r) / sum(x[3] for x in r),
                "rss_kib": idle[name], "heavy_rss_kib": heavy[name],
            })
    return results


def table(results):
    lines = ["| setup | allocator | req/s, 64 conns | server CPU / request (us) | peak RSS after "
             "/healthz load (KiB) | peak RSS after debug text load (KiB) |",
             "|---|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['setup']} | {r['allocator']} | {r['rps']:,.0f} | {r['cpu_us']:.2f} | "
                     f"{r['rss_kib']:,} | {r['heavy_rss_kib']:,} |")
    return "\n".join(lines)
