# The two commands of the quick start: `make demo` and `make test`. Each sets up what is missing first.
SWIFT ?= swift

.PHONY: setup build test check-deploy image-proof demo bench clean

setup:
	@scripts/setup

build: setup
	$(SWIFT) build

# Every test, integration included: the tests start a private PostgreSQL and a Tansu broker themselves.
# First the offline checks of compose/, k8s/ and the shell scripts (seconds; they read `filefleet help`).
test: setup
	$(SWIFT) build --build-tests
	scripts/check-deploy
	$(SWIFT) test --skip-build

# The deployment files and shell scripts alone, and the broken fixtures that prove each check (docs/deploy.md).
check-deploy: setup
	$(SWIFT) build --product filefleet
	scripts/check-deploy

# The Dockerfile's runtime stage without a Docker engine (root): a debootstrap chroot holding its
# packages runs this release build (static Swift stdlib) against a local stack (scripts/image-proof).
image-proof: setup
	.tools/venv/bin/hadolint Dockerfile
	$(SWIFT) build -c release --product filefleet --static-swift-stdlib --build-path .build-image
	scripts/image-proof --binary .build-image/release/filefleet

# Imports a generated sample tree on the embedded stack and shows the result.
demo: build
	@scripts/demo

# A benchmark, not a test: FileFleet against hand-written importers on one corpus, in one run
# (scripts/bench --help). BENCH_ARGS="--files 1000000" for a million files.
bench: setup
	$(SWIFT) build -c release --product filefleet
	scripts/bench $(BENCH_ARGS)

clean:
	rm -rf .build .build-image
