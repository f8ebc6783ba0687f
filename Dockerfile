# syntax=docker/dockerfile:1

# ---- Build ----------------------------------------------------------------
# Swift 6.3 matches the toolchain used in development (6.3.1). Package.swift
# declares tools 6.1, so swift:6.1-bookworm also builds it if 6.3 is not wanted.
FROM swift:6.3-bookworm AS build
WORKDIR /build

# Resolve dependencies in their own layer, so editing sources does not
# re-fetch them. Package.resolved is gitignored: the glob copies it when it is
# present, and the versions it pins are then used as they are.
COPY Package.* ./
RUN swift package resolve $([ -f Package.resolved ] && echo --force-resolved-versions)

COPY . .
RUN swift build -c release --static-swift-stdlib --product opencourse

# The binary finds its SQL migrations in the resource bundle next to it.
RUN mkdir /staging \
 && cp .build/release/opencourse /staging/ \
 && cp -R .build/release/opencourse_OpenCourse.resources /staging/

# ---- Runtime --------------------------------------------------------------
FROM debian:bookworm-slim

# With --static-swift-stdlib the service needs no Swift libraries at run time,
# and it uses neither FoundationNetworking (libcurl) nor FoundationXML (libxml2).
# ca-certificates: TLS to PostgreSQL; tzdata: time zones.
# curl is only for HEALTHCHECK: it checks the HTTP status and is easy to read;
# a bash /dev/tcp one-liner would save a few MB but only proves the port is open
# unless it also parses the response.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata curl \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 opencourse \
 && useradd --uid 10001 --gid opencourse --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin opencourse \
 && mkdir /app && chown opencourse:opencourse /app

# Files stay root-owned (read-only to the service); /app itself is writable so
# the default DATABASE_URL (sqlite:opencourse.sqlite) works for a quick try.
# Use PostgreSQL in production.
WORKDIR /app
COPY --from=build /staging/ /app/

# LD_BIND_NOW: the dynamic linker resolves every symbol at start-up; lazily, a first call while
# serving walks the Swift libraries' symbol tables and brings back ~3 MiB of the pages the server
# gave back after start-up (README, "Memory").
ENV HOST=0.0.0.0 \
    PORT=8080 \
    LD_BIND_NOW=1

# Numeric, so Kubernetes runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8080

# Liveness only (/health touches no database); load balancers use /ready.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${PORT}/health" || exit 1

# The service drains and shuts down gracefully on SIGTERM.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/opencourse"]
CMD ["serve"]
