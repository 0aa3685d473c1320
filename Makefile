# The two commands of the quick start: `make demo` and `make test`. Each sets up what is missing first.
SWIFT ?= swift

.PHONY: setup build test check-deploy image-proof demo bench chaos clean

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
	.tools/venv/bin/python scripts/browser-check --binary .build/debug/filefleet
	scripts/chaos --binary .build/debug/filefleet $(CHAOS_SMOKE)

# What `make test` runs of the chaos kit: the verifier fed corrupted databases, and one fault of each
# kind at 5,000 files (each batch made 50 ms slower, so that a run lasts long enough to be hit).
CHAOS_SMOKE = --self-test --scenario smoke --files 5000 --slow-batch-ms 50 --batch-size 50 --mutate 0.1

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

# Each fault scenario alone at 20,000 files, then all of them mixed at 200,000 (scripts/chaos --help);
# REPORT=1 writes docs/reliability.md. Needs root. CHAOS_ARGS="--scenario kill-storm" for one.
chaos: setup
	$(SWIFT) build -c release --product filefleet
	scripts/chaos $(if $(CHAOS_ARGS),$(CHAOS_ARGS),--self-test --scenario all) $(if $(REPORT),--report docs/reliability.md --json .chaos-results.json)

clean:
	rm -rf .build .build-image
