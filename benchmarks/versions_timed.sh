#!/bin/bash
# Wall time of one mlplab command, process start to exit, for an older commit against this
# checkout: one process each, taking turns (alternating which goes first), with the host's
# 2048x2048 float32 matmul speed measured before each round (this machine's speed drifts).
#
#   git worktree add /tmp/old COMMIT
#   bash benchmarks/versions_timed.sh /tmp/old ROUNDS train fast-fashion-mnist --seed 0 -q --out /tmp/mm
set -euo pipefail
old_tree=$1 rounds=$2
shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}

gflops() {
  "$python" -c "
import time, numpy as np
a = np.random.rand(2048, 2048).astype(np.float32); a @ a
t = time.perf_counter(); [a @ a for _ in range(5)]
print(round(5 * 2 * 2048**3 / (time.perf_counter() - t) / 1e9))"
}

timed() {  # SRC_DIR ARGS...: seconds for `python -m mlplab ARGS` with SRC_DIR first on the path
  local src=$1 start
  shift
  start=$(date +%s.%N)
  PYTHONPATH=$src "$python" -m mlplab "$@" > /dev/null 2>&1 || echo "failed: $src" >&2
  echo "$(date +%s.%N) - $start" | bc
}

for round in $(seq 1 "$rounds"); do
  speed=$(gflops)
  if (( round % 2 )); then
    old=$(timed "$old_tree/src" "$@"); new=$(timed "$here/src" "$@")
  else
    new=$(timed "$here/src" "$@"); old=$(timed "$old_tree/src" "$@")
  fi
  printf 'round %d  matmul %s GFLOP/s  old %.1f s  new %.1f s\n' "$round" "$speed" "$old" "$new"
done
