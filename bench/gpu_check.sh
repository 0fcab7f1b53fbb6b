#!/usr/bin/env bash
# The device check (issue 26): every GPU measurement the project needs, in one call on a machine
# with a CUDA device, each step timed and printed, so that its tables can go into bench/README.md.
#
#     bash bench/gpu_check.sh              # on the device (about 10 min with the paper profile)
#     bash bench/gpu_check.sh --dry-run    # anywhere: print the steps, and check that each script
#                                          # accepts its arguments (its --help), running nothing
#     bash bench/gpu_check.sh --no-paper   # every step but the paper profile's build
#
# It runs from the project root with the project's .venv (python3 pipeline.py test or build makes
# it; on the device machine install the CUDA build of torch==2.13.0 into it first). The paper
# profile builds from an empty cache of its own (a temporary folder), as the issue's target says.
set -euo pipefail
cd "$(dirname "$0")/.."

dry=0
paper=1
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    --no-paper) paper=0 ;;
    *) echo "gpu_check.sh: unknown argument $arg (use --dry-run, --no-paper)" >&2; exit 2 ;;
  esac
done

python=.venv/bin/python
if [[ ! -x $python ]]; then
  echo "gpu_check.sh: no .venv; run python3 pipeline.py test (or build) once first" >&2
  exit 2
fi

# In a dry run: run a bench script only up to its argument parsing (an unknown or malformed
# argument fails as it would on the device), then stop.
check_arguments() {
  "$python" - "$@" <<'PY'
import argparse, os, runpy, sys

parse = argparse.ArgumentParser.parse_args


def parse_then_stop(self, args=None, namespace=None):
    parse(self, args, namespace)
    raise SystemExit(0)


argparse.ArgumentParser.parse_args = parse_then_stop
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
runpy.run_path(sys.argv[0], run_name="__main__")
PY
}

# step NAME COMMAND...: print it, then run and time it (in a dry run: check a bench script's
# arguments instead).
step() {
  local name=$1
  shift
  echo "=== ${name}: $*"
  if ((dry)); then
    if [[ $1 == "$python" && $2 == bench/* ]]; then
      check_arguments "${@:2}" ||
        { echo "gpu_check.sh: ${name}: the script rejects its arguments" >&2; exit 1; }
    fi
    return 0
  fi
  local start=$SECONDS
  "$@"
  echo "=== ${name}: $((SECONDS - start)) s"
}

if ((dry)); then
  echo "dry run: nothing is executed"
else
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  $python -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; \
print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"
fi

# 1. The tests that need the device (skipped on a CPU): flows on CUDA, the sync-free training.
step "CUDA tests" "$python" -m pytest -q -p no:cacheprovider \
  tests/unit/test_flows.py tests/unit/test_sync_free_training.py -k cuda
# 2. Training throughput against FrEIA, normflows, nflows and zuko, in one process.
step "training, one flow" "$python" bench/bench_train.py --device cuda --dims 20 100
# 3. Many flows at once: K = 1, 8, 64 stacked.
step "training, stacked" "$python" bench/bench_stacked.py --device cuda --dim 20 --k 1 8 64 \
  --n-train 100000 --trainers "fit_many, stacked fused step" "fit, one flow at a time"
# 4. log pθ throughput (D = 100 among its rows) against the same libraries.
step "log p" "$python" bench/bench_logp.py --device cuda
# 5. The paper profile end to end from an empty cache, seconds per chapter (printed by the build).
if ((paper)); then
  cache=$( ((dry)) && echo "<a new temporary folder>" || mktemp -d)
  step "paper profile" env FLOWCORE_CACHE="$cache" "$python" pipeline.py build --profile paper
fi
echo "gpu_check.sh: done"
