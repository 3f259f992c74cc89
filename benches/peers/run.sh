#!/usr/bin/env bash
# `make bench-peers`: gradlab's real training step and the PyTorch / JAX peer scripts on the
# same workloads, in the same run, at 1 and 2 threads; then one table of steps/s and ratios.
#
# The peers live in their own virtual environment (benches/peers/.venv), created here from
# the package registry on first use. A peer that cannot be installed or imported is reported
# as missing; the rest still runs.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

workloads="${WORKLOADS:-w1,w1_noprobe,w2,w2_noprobe,lstm,rnn}"
threads_list="${THREADS:-1 2}"
reps="${REPS:-3}"
out="$here/results/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
mkdir -p "$here/results"
export BENCH_JSONL="$out"

echo "== building gradlab (release)"
cargo build --release --locked >&2 || { echo "gradlab does not build" >&2; exit 1; }
bin="${CARGO_TARGET_DIR:-$root/target}/release/gradlab"

venv="$here/.venv"
py=""
if [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2; then
  py="$venv/bin/python"
  for pkg in torch jax; do
    if ! "$py" -c "import $pkg" 2>/dev/null; then
      echo "== installing $pkg into $venv (first use only)" >&2
      "$py" -m pip install -q "$pkg" >&2 || echo "!! could not install $pkg: its rows will be missing" >&2
    fi
  done
else
  echo "!! could not create a Python virtual environment: peer rows will be missing" >&2
fi

pin() { # pin N-thread runs to N cores, as the peer figures were measured
  if command -v taskset >/dev/null; then
    if [ "$1" = 1 ]; then echo "taskset -c 1"; else echo "taskset -c 0-$(($1 - 1))"; fi
  fi
}

# Rounds repeat the whole sequence; the summary keeps each row's best round. On this shared
# machine a slow minute can hit whichever framework happens to run then; repeating the
# sequence gives every framework the same chances.
for round in $(seq "${ROUNDS:-2}"); do
echo "== round $round" >&2
for t in $threads_list; do
  echo "== $t thread(s)" >&2
  # gradlab's default engine (portable) and the `gemm`-crate engine (cpu) it replaced as the
  # default; add `flex` (ENGINES="portable cpu flex") for the op-by-op reference.
  for engine in ${ENGINES:-portable cpu}; do
    RAYON_NUM_THREADS=$t $(pin "$t") "$bin" bench-step --device "$engine" --threads "$t" \
      --workloads "$workloads" --reps "$reps" | tee -a "$out" >/dev/null \
      || echo "!! gradlab bench-step ($engine) failed" >&2
  done
  if [ -n "$py" ] && "$py" -c "import torch" 2>/dev/null; then
    $(pin "$t") "$py" "$here/bench_torch.py" --threads "$t" --mode eager --workloads "$workloads" --reps "$reps" >/dev/null \
      || echo "!! torch eager failed" >&2
    $(pin "$t") "$py" "$here/bench_torch.py" --threads "$t" --mode compile --workloads "$workloads" --reps "$reps" >/dev/null \
      || echo "!! torch compile failed" >&2
  else
    echo "!! PyTorch missing: no torch rows" >&2
  fi
  if [ -n "$py" ] && "$py" -c "import jax" 2>/dev/null; then
    $(pin "$t") "$py" "$here/bench_jax.py" --threads "$t" --workloads "$workloads" --reps "$reps" >/dev/null \
      || echo "!! jax failed" >&2
  else
    echo "!! JAX missing: no jax rows" >&2
  fi
  # The product kernels alone: gradlab's portable kernel and the gemm crate's, then numpy's.
  RAYON_NUM_THREADS=$t $(pin "$t") "$bin" bench-sgemm --threads "$t" --reps "$reps" \
    | tee -a "$out" >/dev/null || echo "!! gradlab bench-sgemm failed" >&2
  if [ -n "$py" ] && "$py" -c "import numpy" 2>/dev/null; then
    BENCH_JSONL="$out" $(pin "$t") "$py" "$here/bench_sgemm.py" --threads "$t" --libs numpy --reps "$reps" >/dev/null \
      || echo "!! numpy sgemm failed" >&2
  fi
done
done

python3 "$here/summarize.py" "$out"
echo "(raw records: $out)"
