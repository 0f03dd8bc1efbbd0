# ados-work-runner — every day commands. `make help` lists them.
CARGO ?= cargo
BIN   := ados-work-runner
# Where cargo puts the binary: $CARGO_TARGET_DIR when set, like cargo itself.
RELEASE_BIN := $(or $(CARGO_TARGET_DIR),./target)/release/$(BIN)

.PHONY: help build release test lint run demo bench static dist control-plane clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

build: ## debug build
	$(CARGO) build --workspace

release: ## optimised build: $CARGO_TARGET_DIR (or target)/release/ados-work-runner
	$(CARGO) build --release --bin $(BIN)

# The static binary first: tests run it (tests/static_binary.rs) and build
# the Docker images from it (tests/docker_runner.rs).
test: static ## the whole test suite (unit, integration, property tests, the static binary, Docker)
	$(CARGO) test --workspace --all-targets

lint: ## rustfmt check + clippy with -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

run: release ## run the daemon (configure with ADOS_* variables, see README)
	$(RELEASE_BIN) run

control-plane: ## a local control plane for trying daemon mode (see README)
	$(CARGO) run -p ados-test-support --bin ados-control-plane -- --port 9090 --token dev-token

demo: release ## the whole pipeline on a throwaway repo: no account, no API key
	./dist/demo/run.sh $(RELEASE_BIN)

bench: release ## benchmarks; figures and method in BENCHMARKS.md
	./dist/bench/run.sh $(RELEASE_BIN)

static: ## fully static musl binary: dist/ados-work-runner (see docs/static.md)
	./dist/build-static.sh

dist: static ## release tarball + .sha256 in dist/out (static binary, README, LICENSE, docs, .env.example)
	./dist/make-dist.sh

clean:
	$(CARGO) clean
