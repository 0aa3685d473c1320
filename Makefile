# The two commands of the quick start: `make demo` and `make test`. Each sets up what is missing first.
SWIFT ?= swift

.PHONY: setup build test demo bench clean

setup:
	@scripts/setup

build: setup
	$(SWIFT) build

# Every test, integration included: the tests start a private PostgreSQL and a Tansu broker themselves.
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Imports a generated sample tree on the embedded stack and shows the result.
demo: build
	@scripts/demo

# A benchmark, not a test: FileFleet against hand-written importers on one corpus, in one run
# (scripts/bench --help). BENCH_ARGS="--files 1000000" for a million files.
bench: setup
	$(SWIFT) build -c release --product filefleet
	scripts/bench $(BENCH_ARGS)

clean:
	rm -rf .build
