# The two commands of the README: `make demo` and `make test`.
.PHONY: all build setup demo test lint fuzz bench bench-archive bench-restore fault fault-long clean

GO ?= go

all: build

setup:
	bash scripts/setup.sh

build: setup
	$(GO) build -o bin/rockstream ./cmd/rockstream

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

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=5 -cpu=1 ./segments/ ./rocks/

bench-archive: setup
	bash scripts/bench-archive.sh 3

bench-restore: setup
	bash scripts/bench-restore.sh 1024

clean:
	rm -rf bin
