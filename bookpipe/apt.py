"""Debian packages the pipeline installs when they are missing: Chromium and its driver for the
browser tests, and FashionMNIST for the image chapters.

Standard library only. :func:`ensure_packages` runs ``apt-get update`` and ``apt-get install -y``
(through ``sudo -n`` when not root) and otherwise stops with one line saying what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .layout import CHROMEDRIVER, CHROMIUM, FASHION_MNIST, log

__all__ = ["ensure_browser", "ensure_data", "ensure_packages"]


def ensure_packages(files: Mapping[str, Path], needed_by: str) -> None:
    """Install with apt-get each Debian package (key) whose file (value) is missing.

    Raises:
        SystemExit: with one line naming the packages and the command to run by hand, when
            apt-get is missing, fails, or leaves a file missing.
    """
    missing = {package: path for package, path in files.items() if not path.exists()}
    if not missing:
        return
    packages = list(missing)
    by_hand = f"install by hand: apt-get install -y {' '.join(packages)} (Debian/Ubuntu)"
    what = " and ".join(str(p) for p in missing.values())
    log(f"{needed_by} needs {what}; installing {', '.join(packages)} with apt-get")
    if not shutil.which("apt-get"):
        raise SystemExit(f"[pipeline] {what} missing and apt-get is not available; {by_hand}")
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise SystemExit(
                f"[pipeline] {what} missing; not root and no sudo to run apt-get; {by_hand}"
            )
        prefix = ["sudo", "-n"]
    env = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive"]
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        log(" ".join([*prefix, *command]))
        if subprocess.run([*env, *command], stdin=subprocess.DEVNULL).returncode != 0:
            hint = " (sudo -n needs passwordless sudo)" if prefix else ""
            raise SystemExit(
                f"[pipeline] `{' '.join([*prefix, *command])}` failed{hint}; {by_hand}"
            )
    still = [str(p) for p in missing.values() if not p.exists()]
    if still:
        raise SystemExit(
            f"[pipeline] apt-get ran but {' and '.join(still)} is still missing; {by_hand}"
        )


def ensure_browser() -> None:
    """Debian's ``chromium`` and ``chromium-driver``, which the browser tests drive."""
    ensure_packages({"chromium": CHROMIUM, "chromium-driver": CHROMEDRIVER}, "the browser test")


def ensure_data() -> None:
    """Debian's ``dataset-fashion-mnist`` (the original idx files), which the image chapters read
    (MNIST comes with the pinned requirements)."""
    ensure_packages({"dataset-fashion-mnist": FASHION_MNIST}, "the image chapters' FashionMNIST")
