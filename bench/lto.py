"""The release profile's trade-off, measured: link-time optimisation (fat, thin) x codegen units
(1, 16), no LTO at all (`lto = "off"`, 16 units), and the allocator (musl's malloc, shipped,
against mimalloc). Each variant is built
from scratch in a target directory of its own (the cold build), then rebuilt after one source
file changes with its dependencies built (the warm rebuild, what an image rebuild after a
source-only change pays in the builder stage), and its binary is measured for size (debug info
stripped, as shipped), user-space instructions per request (callgrind) and throughput (wrk,
runs interleaved across the variants).
"""

import os
import statistics
import subprocess
import sys
import time
import tomllib

import callgrind

# (lto, codegen units, cargo features): the first is the baseline of the ratios.
VARIANTS = [("fat", 1, ""), ("fat", 16, ""), ("thin", 1, ""), ("thin", 16, ""), ("off", 16, ""),
            ("fat", 1, "mimalloc")]
TRIPLE = "x86_64-unknown-linux-musl"


def _cargo(lto, cgu, features, target_dir):
    # mimalloc is C: .cargo/config.toml names the compiler (Debian's x86_64-linux-musl-gcc).
    env = dict(os.environ, CARGO_PROFILE_RELEASE_LTO=lto,
               CARGO_PROFILE_RELEASE_CODEGEN_UNITS=str(cgu), CARGO_TARGET_DIR=target_dir)
    t0 = time.monotonic()
    subprocess.run(["cargo", "auditable", "build", "--release", "--locked", "--target", TRIPLE,
                    "--bin", "httpserver", "--features", features], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    return time.monotonic() - t0


def _stripped_size(binary):
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True,
                             check=True).stdout.strip()
    host = next(line.split()[1] for line in subprocess.run(
        ["rustc", "-vV"], capture_output=True, text=True, check=True).stdout.splitlines()
        if line.startswith("host:"))
    out = binary + ".stripped"
    subprocess.run([f"{sysroot}/lib/rustlib/{host}/bin/llvm-objcopy", "--strip-debug", binary,
                    out], check=True)
    size = os.path.getsize(out)
    os.remove(out)
    return size


def study(make_server, wrk, rounds, runs, seconds):
    """Returns one dict per variant. `make_server(name, binary)` gives a bench Server; `wrk`
    and `rounds` are bench.py's."""
    results, servers = [], []
    for lto, cgu, features in VARIANTS:
        name = f"lto={lto}, codegen-units={cgu}" + (f", {features}" if features else "")
        print(f"== {name}: cold build, warm rebuilds", file=sys.stderr, flush=True)
        target_dir = os.path.abspath(f"target/lto-study/{lto}-{cgu}{features}")
        subprocess.run(["rm", "-rf", target_dir], check=True)
        cold = _cargo(lto, cgu, features, target_dir)
        warm = []
        for _ in range(2):
            os.utime("src/lib.rs")
            warm.append(_cargo(lto, cgu, features, target_dir))
        binary = os.path.join(target_dir, TRIPLE, "release", "httpserver")
        instr, _ = callgrind.per_request(f"{lto}{cgu}", [binary, "--listen", "127.0.0.1",
                                                         "--workers", "1"])
        results.append({"name": name, "variant": (lto, cgu, features), "cold": cold, "warm": statistics.median(warm),
                        "size": _stripped_size(binary), "instr": instr})
        servers.append(make_server(name, binary))
    for s in servers:
        s.start()
    try:
        for s in servers:
            wrk(s, 64, 3)
        by_name = rounds(servers, runs, lambda s: wrk(s, 64, seconds))
    finally:
        for s in servers:
            s.stop()
    for r in results:
        runs = by_name[r["name"]]
        r["rps"] = statistics.median(x[0] for x in runs)
        r["cpu_us"] = 1e6 * sum(sum(x[4]) for x in runs) / sum(x[3] for x in runs)
    return results


def shipped():
    """(lto, codegen units, features) of Cargo.toml's release profile: what the images ship."""
    with open("Cargo.toml", "rb") as f:
        release = tomllib.load(f)["profile"]["release"]
    return str(release["lto"]), int(release["codegen-units"]), ""


def table(results):
    base, ours = results[0], shipped()
    lines = ["| profile | cold build (s) | warm rebuild (s) | warm / cold | binary, stripped (bytes) "
             "| instructions / request | server CPU / request (us) | req/s, 64 conns "
             "| req/s vs fat, 1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        name = r["name"] + (" **(shipped)**" if r["variant"] == ours else "")
        lines.append(f"| {name} | {r['cold']:.0f} | {r['warm']:.1f} | "
                     f"{r['warm'] / r['cold']:.0%} | {r['size']:,} | {r['instr']:,.0f} | {r['cpu_us']:.2f} | "
                     f"{r['rps']:,.0f} | {r['rps'] / base['rps']:.2f}x |")
    return "\n".join(lines)
