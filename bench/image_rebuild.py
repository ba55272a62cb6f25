"""Warm image rebuilds after a one-file change, in one run: `make image-dev` (bake target
image-dev: profile dev-image, incremental in a cache mount) against the scratch image of
`make release` (bake target image-local: the release profile, fat LTO, cargo-chef layers).

Each builds its own copy of the checkout's files, so the tree is never edited: once as it is, to
warm the engine's cache, then after /healthz's body is changed in src/routes.rs, timed. The images are
tagged httpserver-bench:* and removed afterwards."""

import os
import shutil
import subprocess
import tempfile
import time

EDITED = "src/routes.rs"
TARGETS = [
    ("make image-dev (bake image-dev: profile dev-image)", "image-dev"),
    ("make release, scratch (bake image-local: profile release, fat LTO)", "image-local"),
]


def copy_checkout(root, dest):
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        src = os.path.join(root, name)
        if os.path.isfile(src) and not os.path.islink(src):
            os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, name))


def bake(context, target, tag):
    """Bakes `target` in the copy, as a user would in their checkout (buildx 0.29 and later
    refuse a context outside the working directory without --allow=fs.read)."""
    started = time.monotonic()
    subprocess.run(["docker", "buildx", "bake", "--progress=quiet",
                    "--set", f"{target}.tags={tag}", target],
                   cwd=context, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def edit(path):
    """A change the compiler must act on: /healthz's body, in the copy only."""
    with open(path) as f:
        text = f.read()
    body = 'Bytes::from_static(b"ok\\n")'
    if body not in text:
        raise SystemExit(f"{path} no longer holds {body}: update bench/image_rebuild.py")
    with open(path, "w") as f:
        f.write(text.replace(body, f'Bytes::from_static(b"ok {time.time_ns()}\\n")', 1))


def study(root):
    """[(label, seconds)] for each target's warm rebuild after the one-file change."""
    results = []
    for label, target in TARGETS:
        # A fresh copy per target: each starts from the checkout and gets one edit.
        with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as context:
            copy_checkout(root, context)
            tag = f"httpserver-bench:{target}"
            bake(context, target, tag)
            edit(os.path.join(context, EDITED))
            results.append((label, bake(context, target, tag)))
            subprocess.run(["docker", "image", "rm", "-f", tag], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return results


def table(results):
    rows = "\n".join(f"| {label} | {seconds:.1f} s |" for label, seconds in results)
    return f"""| image build | warm rebuild after a one-file change |
|---|---:|
{rows}"""
