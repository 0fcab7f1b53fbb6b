"""flowcore sets glibc's malloc thresholds when imported, unless told not to
(flowcore.allocator)."""

import os
import platform
import subprocess
import sys

import pytest

PROBE = "import flowcore, flowcore.allocator as a; print(a._tuned)"


def _tuned(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "FLOWCORE_TUNE_MALLOC"}
    if env_value is not None:
        env["FLOWCORE_TUNE_MALLOC"] = env_value
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_import_tunes_malloc_and_the_variable_turns_it_off():
    assert _tuned(None) == "True"
    assert _tuned("0") == "False"
