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
# curl: for the HEALTHCHECK below (and for an operator in the container:
# curl -H "Authorization: Bearer ..." http://127.0.0.1:9465/status).
#
# The user rockstream, uid and gid 10001, runs everything: no root at run time.
# What it writes must be writable by 10001:
#   - /data and /standby (the compose file's mount points) are made here,
#     owned by 10001: Docker gives a new, empty named volume mounted there the
#     owner of the image's folder, so `docker run -v vol:/data` just works.
#     A volume that root filled before (an older image) is not changed:
#     chown -R 10001:10001 it once (docker-compose.yml's init-volumes does).
#   - a bind mount or any other folder: chown 10001:10001 it on the host, or
#     run with --user (or Kubernetes' runAsUser and fsGroup) as its owner.
#   - an archiver needs only to read the database (files RocksDB makes 0644
#     are readable by any uid) and to write its --work-dir, by default
#     .NAME.rockstream beside the database's folder.
RUN apt-get update && apt-get install -y --no-install-recommends librocksdb7.8 rocksdb-tools ca-certificates curl \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --system --gid 10001 rockstream \
	&& useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin rockstream \
	&& mkdir -p /data /standby && chown 10001:10001 /data /standby
COPY --from=build /out/rockstream /usr/local/bin/rockstream
# Numeric, so that Kubernetes' runAsNonRoot can check it without /etc/passwd.
USER 10001:10001
# The same check for the archiver and the standby: GET /healthz (200 while
# the process serves; no token needed, on the standby either) on
# $ROCKSTREAM_LISTEN, the listen address of both commands, or the archiver's
# default 127.0.0.1:9464 when it is unset. So give the address through
# ROCKSTREAM_LISTEN, not --listen, when the check matters: a standby
# (default 127.0.0.1:9465) needs ROCKSTREAM_LISTEN=127.0.0.1:9465 or the
# check fails. A wildcard address works as it is (curl to 0.0.0.0 or [::]
# reaches the local listener on Linux); ":9464" becomes 127.0.0.1:9464. No
# listener (--listen '', or a --config file's listen): disable the check
# (docker run --no-healthcheck). docker-compose.yml checks /readyz instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --retries=3 \
	CMD addr="${ROCKSTREAM_LISTEN:-127.0.0.1:9464}"; case "$addr" in :*) addr="127.0.0.1$addr" ;; esac; \
	curl -fsS -o /dev/null --max-time 4 "http://$addr/healthz" || exit 1
ENTRYPOINT ["rockstream"]
