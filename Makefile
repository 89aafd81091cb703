# sluice — the two commands: `make demo` and `make test` (and `make bench`, docs/benchmarks.md).
# A persistent target dir lets repeated runs (and CI on the same machine) reuse the build.
export CARGO_TARGET_DIR ?= /var/tmp/sluice-target
export CARGO_TERM_COLOR ?= never
SLUICE := $(CARGO_TARGET_DIR)/debug/sluice

.PHONY: all deps pyenv build test demo demo-aws bench fmt lint clean

all: build

deps:
	@scripts/install-deps.sh

## The Python venv of the interop readers and moto, set up once here rather than by the first
## tests to need it, all at the same moment.
pyenv:
	@scripts/python-env.sh >/dev/null

build: deps
	cargo build --workspace --bins

## make test: unit tests and integration tests against private MariaDB servers.
test: deps pyenv
	cargo build --workspace --tests --bins
	cargo test --workspace --no-fail-fast

## make demo: throwaway MariaDB, 50k sample users, the pipeline, live changes.
demo: build
	scripts/demo.sh

## make demo-aws: the reference pipeline's AWS path on moto (Kinesis + S3): MariaDB → sluice →
## a 2-shard stream (DMS JSON) and the S3 lake, read back from the stream live, then Athena DDL.
demo-aws: build pyenv
	scripts/demo-aws.sh

## make bench: the benchmark suite against a private MariaDB (docs/benchmarks.md), built with the
## release-like perf profile; prints a table and writes bench/results.json. BENCH_QUICK=1: small sizes.
bench: deps
	cargo build --profile perf --bin sluice --bin sluice-demo-data --bin sluice-bench
	BENCH_BIN_DIR=$(CARGO_TARGET_DIR)/perf scripts/bench.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean:
	cargo clean
