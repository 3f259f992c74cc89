# gradlab — the two commands a new user needs are `make run` and `make test`.
# One release build serves run, test and bench (Burn is slow to compile; see README).

CARGO ?= cargo
EXPERIMENT ?= experiments/tanh-naive-20.toml
BIN := target/release/gradlab
ifdef CARGO_TARGET_DIR
BIN := $(CARGO_TARGET_DIR)/release/gradlab
endif

.PHONY: run build test test-cpus test-cluster test-gpu bench bench-peers check fmt clippy clean seed-ledger

## The main job: the terminal UI on the default experiment (headless without a terminal).
run: build
	$(BIN) run $(EXPERIMENT)

build:
	$(CARGO) build --release --locked

## Every test: unit, integration through the real binary, TUI snapshots, the PTY test.
## `fault-injection` lets the crash tests stop an append half way; only test builds have it.
## Cargo keeps both builds of the crate side by side, so `make run` after it rebuilds nothing.
## The cross-CPU tests replay under qemu-user: `.ci/ensure-qemu` installs it if missing.
## The second ledger verifier (tools/ledger-verify.py) needs Python's blake3: `.ci/ensure-python`.
TEST_FEATURES := --features fault-injection
test:
	bash .ci/ensure-qemu
	bash .ci/ensure-python
	$(CARGO) test --release --locked $(TEST_FEATURES)

## The unit and integration tests again with every gradlab they start (and the test binaries)
## under emulated CPUs (qemu-user): the suite, the replays and the snapshots must hold on
## another CPU kind. `CPUS="Nehalem"` or `TESTS=ledger` to narrow it; slow (emulation).
## The real-terminal tests are left out: Debian 12's qemu-user (7.2) has no TCGETS2, so the
## UI cannot read the terminal's mode under it ("Function not implemented"); they test the
## terminal, not arithmetic, and run natively in `make test`.
CPUS ?= Nehalem Haswell
TESTS ?=
QEMU ?= qemu-x86_64
# Haswell's system features that qemu's TCG cannot emulate: without this it warns about each
# on stderr of every process, which tests that read stderr would take for the binary's own.
HASWELL_NOT_IN_TCG := -pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm
test-cpus:
	@command -v $(QEMU) >/dev/null || { echo "$(QEMU) is missing: apt-get install qemu-user" >&2; exit 1; }
	bash .ci/ensure-python
	for cpu in $(CPUS); do \
	  case $$cpu in \
	    Haswell) model="$$cpu,$(HASWELL_NOT_IN_TCG)";; \
	    *) model=$$cpu;; \
	  esac; \
	  echo "== under $(QEMU) -cpu $$model"; \
	  GRADLAB_TEST_RUNNER="$(QEMU) -cpu $$model" \
	  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$(QEMU) -cpu $$model" \
	    $(CARGO) test --release --locked $(TEST_FEATURES) --lib --test tests -- --skip suite::pty $(TESTS) || exit 1; \
	done

## The README's cluster recipes, run for real on this machine: GNU parallel --sshlogin to an
## sshd on 127.0.0.1 and a single-node Slurm job array (apt-get installs what is missing; root).
## Each must give the sweep table `gradlab sweep --jobs 2` gives. Stops all it starts.
test-cluster: build
	GRADLAB_BIN=$(abspath $(BIN)) bash .ci/test-cluster

## Burn's wgpu backend on Mesa's software Vulkan driver (lavapipe, installed if missing): every
## model kind trains a few steps on `--device wgpu`, is recorded with the device, and replays
## CLOSE on the CPU. Builds `--features wgpu` into its own target folder (a long first build).
test-gpu:
	bash .ci/test-gpu

## Benchmarks (never part of `make test`).
bench:
	$(CARGO) bench --locked --bench steps

## gradlab vs PyTorch and JAX on the same workloads, in one run (creates its own venv).
bench-peers:
	bash benches/peers/run.sh

## fmt + clippy (warnings denied) + tests.
check: fmt clippy test

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --release --locked --all-targets -- -D warnings

## Record every canonical experiment in ledger/ (how the repository's own ledger was made).
seed-ledger: build
	for f in experiments/*.toml; do $(BIN) run "$$f" --headless || exit 1; done
	$(BIN) ledger verify

clean:
	$(CARGO) clean
