"""The device check script, ``bench/gpu_check.sh``, in its dry run: every step is listed and every
bench script accepts the arguments the script gives it (run up to its argument parsing), so that the
one call on a lent device does not fail on a typo."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _gpu_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_the_dry_run_lists_every_step_and_the_scripts_accept_their_arguments():
    done = _gpu_check("--dry-run")
    assert done.returncode == 0, done.stderr
    steps = [line.split(":")[0] for line in done.stdout.splitlines() if line.startswith("=== ")]
    assert steps == [
        "=== CUDA tests",
        "=== training, one flow",
        "=== training, stacked",
        "=== log p",
        "=== paper profile",
    ]


def test_an_unknown_option_is_named():
    done = _gpu_check("--fast")
    assert done.returncode == 2 and "unknown argument --fast" in done.stderr
