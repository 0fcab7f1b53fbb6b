#!/usr/bin/env python3
"""Time each chapter and the whole book build, per profile.

    python3 bench/bench_book.py                      # print the tables of builds already done
    python3 bench/bench_book.py --run default ci      # build these profiles first (cache as it is)
    python3 bench/bench_book.py --run default --cold  # ... from an empty cache (trains everything)

``pipeline.py build`` writes ``_build/<profile>/timings.json`` (seconds per chapter, the HTML
step and the total); this script runs the builds if asked and prints one markdown table with a
column per profile, so profiles are compared in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(profile: str, cold: bool) -> float:
    env = dict(os.environ)
    if cold:
        env["FLOWCORE_CACHE"] = tempfile.mkdtemp(prefix=f"flowcore-cold-{profile}-")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "pipeline.py"), "build", "--profile", profile],
        check=True,
        env=env,
    )
    if cold:
        shutil.rmtree(env["FLOWCORE_CACHE"], ignore_errors=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run",
        nargs="*",
        default=[],
        choices=["ci", "default", "paper"],
        help="profiles to build before reporting",
    )
    parser.add_argument("--cold", action="store_true", help="build from an empty cache")
    args = parser.parse_args()
    wall = {profile: run(profile, args.cold) for profile in args.run}
    found = {}
    for profile in ("ci", "default", "paper"):
        path = ROOT / "_build" / profile / "timings.json"
        if path.exists():
            found[profile] = json.loads(path.read_text())
    if not found:
        raise SystemExit("no timings yet: run `python3 pipeline.py build` or pass --run PROFILE")
    chapters = list(dict.fromkeys(c for t in found.values() for c in t["chapters"]))
    print("| step | " + " | ".join(found) + " |")
    print("|---|" + "---|" * len(found))
    for chapter in chapters:
        print(
            f"| chapter {chapter} | "
            + " | ".join(
                f"{t['chapters'].get(chapter, float('nan')):.1f} s" for t in found.values()
            )
            + " |"
        )
    print(
        "| jupyter-book HTML | " + " | ".join(f"{t['html']:.1f} s" for t in found.values()) + " |"
    )
    print(
        "| **whole build** | "
        + " | ".join(f"**{t['total']:.1f} s**" for t in found.values())
        + " |"
    )
    for profile, seconds in wall.items():
        print(
            f"\n{profile}: {seconds:.1f} s wall-clock including the venv check "
            f"({'empty' if args.cold else 'existing'} cache)"
        )


if __name__ == "__main__":
    main()
