# The two commands of the README: `make demo` and `make test`.
.PHONY: all build setup demo test lint fuzz bench bench-full bench-micro bench-archive bench-restore fault fault-long clean

GO ?= go

all: build

setup:
	bash scripts/setup.sh

build: setup
	$(GO) build -ldflags "-X main.commit=$$(git rev-parse --short=12 HEAD 2>/dev/null)" -o bin/rockstream ./cmd/rockstream

demo: build
	bash scripts/demo.sh

# The whole test suite, installing what it needs (Debian packages, MinIO).
test:
	bash scripts/test.sh

# The fault suite (docs/RELIABILITY.md): its short form also runs in
# `make test`; fault-long raises the counts (ROCKSTREAM_LONG=1).
fault:
	bash scripts/setup.sh --test
	bash scripts/fault.sh

fault-long:
	bash scripts/setup.sh --test
	bash scripts/fault.sh --long

lint:
	gofmt -l . | (! grep .)
	$(GO) vet ./...

# Long fuzz runs (the seed corpora run in `make test`). FUZZTIME=10m by default.
FUZZTIME ?= 10m
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzReader -fuzztime=$(FUZZTIME) ./segments/
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=$(FUZZTIME) ./manifest/
	$(GO) test -run='^$$' -fuzz=FuzzOpen -fuzztime=$(FUZZTIME) ./crypt/
	$(GO) test -run='^$$' -fuzz=FuzzReader -fuzztime=$(FUZZTIME) ./stream/

# The benchmark harness (cmd/rockstream-bench): measures rockstream against its
# baselines and writes BENCHMARKS.md. `make bench` is the short version (about
# 5 minutes on 2 cores), `make bench-full` the issue's sizes (1 GiB, 5 runs).
BENCHFLAGS ?=
bench: build
	bash scripts/setup.sh --test
	$(GO) build -o bin/rockstream-bench ./cmd/rockstream-bench
	bin/rockstream-bench --command "make bench" $(BENCHFLAGS)

bench-full: build
	bash scripts/setup.sh --test
	$(GO) build -o bin/rockstream-bench ./cmd/rockstream-bench
	bin/rockstream-bench --full --command "make bench-full" $(BENCHFLAGS)

# Parts of the harness, printed rather than written to BENCHMARKS.md.
bench-archive: build
	bash scripts/setup.sh --test
	$(GO) build -o bin/rockstream-bench ./cmd/rockstream-bench
	bin/rockstream-bench --only throughput,slowdown --out - --command "make bench-archive" $(BENCHFLAGS)

bench-restore: build
	bash scripts/setup.sh --test
	$(GO) build -o bin/rockstream-bench ./cmd/rockstream-bench
	bin/rockstream-bench --only base,restore,encryption --out - --command "make bench-restore" $(BENCHFLAGS)

# Go micro-benchmarks of the formats and the RocksDB glue, and the
# archiver's catch-up on all cores (blocks compressed in flight or not).
bench-micro:
	$(GO) test -run='^$$' -bench=. -benchmem -count=5 -cpu=1 ./segments/ ./rocks/
	$(GO) test -run='^$$' -bench=CatchUp -benchtime=3x -count=5 ./archive/

clean:
	rm -rf bin
