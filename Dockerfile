# rockstream with Debian's RocksDB 7.8.3 (the version grocksdb v1.7.15 builds
# against), plus rocksdb-tools (db_bench, ldb) for the compose demo's writer.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends librocksdb-dev \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -o /out/rockstream ./cmd/rockstream

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends librocksdb7.8 rocksdb-tools ca-certificates \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /out/rockstream /usr/local/bin/rockstream
ENTRYPOINT ["rockstream"]
