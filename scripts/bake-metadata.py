#!/usr/bin/env python3
"""What `docker buildx bake --metadata-file=FILE` recorded as pushed: the one parser of it that
the make verbs (push, sign, verify) use, locally and in GitHub Actions alike.

  bake-metadata.py FILE refs            every REPO@DIGEST pushed, one per line (make sign)
  bake-metadata.py FILE images SYMBOLS  "REPO DIGEST SYMBOLS_DIGEST" for every image pushed by a
                                        target other than SYMBOLS (the debug symbols' target),
                                        SYMBOLS_DIGEST being that target's digest (make push
                                        links each image to it; make verify checks each image)

The file maps target names to what each built; buildx also writes other top-level keys, such as
"buildx.build.warnings" (a list, with BUILDX_METADATA_WARNINGS=true, which bake-action sets).
Anything that is not a target that pushed an image is skipped. A target pushed under several
tags, or to several repositories (image.name lists them, comma-separated), gives one line per
repository.
"""
import json
import sys


def repository(name):
    """ghcr.io/o/r:1.2 -> ghcr.io/o/r; localhost:5000/r:tag -> localhost:5000/r."""
    name = name.strip().split("@", 1)[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def pushed(metadata):
    """(target, repository, digest) for every repository each target pushed to."""
    for target, built in metadata.items():
        if not isinstance(built, dict):
            continue
        digest, names = built.get("containerimage.digest"), built.get("image.name")
        if not isinstance(digest, str) or not isinstance(names, str):
            continue
        repos = []
        for name in names.split(","):
            if name.strip() and repository(name) not in repos:
                repos.append(repository(name))
        for repo in repos:
            yield target, repo, digest


def main(argv):
    if len(argv) < 3 or argv[2] not in ("refs", "images") or (argv[2] == "images") != (len(argv) == 4):
        sys.exit(__doc__)
    try:
        with open(argv[1]) as f:
            metadata = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"bake-metadata.py: cannot read {argv[1]}: {e}")
    if not isinstance(metadata, dict):
        sys.exit(f"bake-metadata.py: {argv[1]} is not bake metadata (a JSON object)")
    entries = list(pushed(metadata))
    if argv[2] == "refs":
        for _, repo, digest in entries:
            print(f"{repo}@{digest}")
        return
    symbols = argv[3]
    debug = {repo: digest for target, repo, digest in entries if target == symbols}
    for target, repo, digest in entries:
        if target == symbols:
            continue
        if repo not in debug:
            sys.exit(f"bake-metadata.py: {target} pushed {repo}, but {symbols} did not push there")
        print(repo, digest, debug[repo])


if __name__ == "__main__":
    main(sys.argv)
