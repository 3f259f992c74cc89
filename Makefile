# gradlab — the two commands a new user needs are `make run` and `make test`.
# One release build serves run, test and bench (Burn is slow to compile; see README).

CARGO ?= cargo
EXPERIMENT ?= experiments/tanh-naive-20.toml
BIN := target/release/gradlab
ifdef CARGO_TARGET_DIR
BIN := $(CARGO_TARGET_DIR)/release/gradlab
endif

.PHONY: run build test bench bench-peers check fmt clippy clean seed-ledger

## The main job: the terminal UI on the default experiment (headless without a terminal).
run: build
	$(BIN) run $(EXPERIMENT)

build:
	$(CARGO) build --release --locked

## Every test: unit, integration through the real binary, TUI snapshots, the PTY test.
test:
	$(CARGO) test --release --locked

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
