# Thin wrapper over CMake for the README's two commands.
#   make        release build -> build/warden
#   make run    install deps, build, serve the embedded default config
#   make test   install deps, ASan+UBSan build, unit + integration + e2e tests, bounded fuzzing
#   make bench  load benchmarks; rewrites bench/README.md
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 20

.PHONY: all deps build run test test-only fuzz bench clean
all: build

deps:
	@bash scripts/deps.sh

build:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS)

run: deps build
	./build/warden serve

build-asan:
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DWARDEN_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

build-fuzz:
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DWARDEN_FUZZ=ON -DWARDEN_SANITIZE=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

test: deps build build-asan build-fuzz
	@bash tests/run.sh

fuzz: build-fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh

bench: deps build
	@bash bench/run.sh

clean:
	rm -rf build build-asan build-fuzz
.PHONY: build-asan build-fuzz
