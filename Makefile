# Vigil. `make demo` and `make test` each install what they need and build first.
SWIFT ?= swift
BIN := .build/debug/vigil

.PHONY: all deps test-deps build demo test bench fuzz clean

all: build

deps:
	@./scripts/install-deps.sh

test-deps:
	@./scripts/install-deps.sh --test

build: deps
	$(SWIFT) build

## The main job on an embedded default: broker, coordinator, two workers, simulated market.
demo: build
	$(BIN) demo --config cluster.conf

## Unit and integration tests (real broker, real processes, real SQLite, real HTTP/2).
test: deps test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

## Throughput, latency and memory against this machine's own limit (release build; not part of test).
bench: deps
	$(SWIFT) build -c release --product vigil
	.build/release/vigil bench

clean:
	rm -rf .build
