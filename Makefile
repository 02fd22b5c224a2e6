# Vigil. `make demo` and `make test` each install what they need and build first.
SWIFT ?= swift
BIN := .build/debug/vigil

.PHONY: all deps test-deps build demo test bench fuzz fuzz-smoke clean

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

## Unit and integration tests (real broker, real processes, real SQLite, real HTTP/2), then a
## short fuzz run of each libFuzzer target (FUZZ_SMOKE_SECONDS) when the toolchain has libFuzzer.
test: deps test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	@$(MAKE) --no-print-directory fuzz-smoke

## Throughput, latency and memory against this machine's own limit (release build; not part of test).
bench: deps
	$(SWIFT) build -c release --product vigil
	.build/release/vigil bench

## libFuzzer on the trade parser (and the partition processor behind it), the RPC message
## decoder, the checkpoint decoder and the cluster.conf loader, FUZZ_SECONDS each (default 60).
## Release build with -sanitize=fuzzer,address in .build-fuzz (the targets exist only with
## VIGIL_FUZZ=1, see Package.swift). Seeds: Fuzz/corpus/<target>; what the fuzzer learns goes to
## .build-fuzz/corpus, crashes to .build-fuzz/artifacts/<target> (then: add the input to
## Fuzz/corpus/<target>, fix, and the corpus replays in `make test` keep it fixed).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := FuzzTradeParser FuzzRPCMessages FuzzCheckpoint FuzzConfig
FUZZ_BUILD := -c release --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
	-Xcc -fsanitize=fuzzer-no-link,address -Xcxx -fsanitize=fuzzer-no-link,address -Xswiftc -use-ld=lld
fuzz: deps
	@for t in $(FUZZ_TARGETS); do VIGIL_FUZZ=1 $(SWIFT) build $(FUZZ_BUILD) --product $$t || exit 1; done
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p .build-fuzz/corpus/$$t .build-fuzz/artifacts/$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 .build-fuzz/release/$$t -max_total_time=$(FUZZ_SECONDS) \
			-max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=.build-fuzz/artifacts/$$t/ \
			.build-fuzz/corpus/$$t Fuzz/corpus/$$t > .build-fuzz/$$t.log 2>&1 \
			|| { tail -40 .build-fuzz/$$t.log; echo "fuzz: $$t CRASHED; input in .build-fuzz/artifacts/$$t/, log in .build-fuzz/$$t.log"; exit 1; }; \
		grep -E "DONE|stat::number_of_executed_units|stat::peak_rss_mb" .build-fuzz/$$t.log | tr '\n' ' '; echo; \
	done
	@echo "fuzz: no crash in $(FUZZ_TARGETS)"

## Part of `make test`: the instrumented build (about 3 minutes on two cores) and 10 s per target.
FUZZ_SMOKE_SECONDS ?= 10
fuzz-smoke:
	@if ./scripts/libfuzzer-available.sh; then \
		$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS); \
	else \
		echo "fuzz: SKIPPED, this toolchain cannot build libFuzzer targets (see above); the corpora were replayed by the tests"; \
	fi

clean:
	rm -rf .build .build-fuzz
