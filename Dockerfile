# tokend container image.
#   docker build -t tokend .
#   docker run --rm -p 8080:8080 -p 50051:50051 -p 9090:9090 \
#     -v "$PWD/tokend.toml:/etc/tokend/tokend.toml:ro" tokend
# The image holds no configuration: mount one at /etc/tokend/tokend.toml (see
# deploy/compose/tokend.toml) and pass secrets as environment variables (`*_env` keys).

ARG RUST_VERSION=1

# ---- build -------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /build

# 1. Dependencies only, in their own layer: a change under src/ does not rebuild them.
#    Cargo.toml names benches and an integration test, so cargo wants those files to exist;
#    stubs stand in for them (the release binary never builds them).
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
RUN mkdir -p src benches tests/api \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/verify.rs \
    && echo 'fn main() {}' > benches/revocation.rs \
    && echo 'fn main() {}' > tests/api/main.rs \
    && cargo build --release --locked --bin tokend \
    && rm -f target/release/tokend target/release/deps/tokend-* target/release/deps/libtokend-*

# 2. The crate itself. COPY keeps the files' old mtimes; touch them so cargo rebuilds.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin tokend \
    && install -D -m 0755 target/release/tokend /out/tokend \
    && /out/tokend --version

# ---- runtime -----------------------------------------------------------------------------
# glibc, libgcc and CA certificates, no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

LABEL org.opencontainers.image.title="tokend" \
      org.opencontainers.image.description="Token validation service: JWT verification, RFC 7662 introspection, revocation" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/tokend /usr/local/bin/tokend

# Numeric user so Kubernetes' runAsNonRoot can check it (65532 = distroless "nonroot").
USER 65532:65532
WORKDIR /etc/tokend

# HTTP (introspection, revocation, admin, forward-auth, health, metrics), gRPC, metrics listener.
EXPOSE 8080 50051 9090

# Exits 0 only when /readyz answers 200 (every issuer has keys, revocation copy loaded).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/tokend","healthcheck","--url","http://127.0.0.1:8080"]

# Stops gracefully on SIGTERM (drains in-flight requests within server.shutdown_grace_seconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tokend"]
CMD ["serve", "--config", "/etc/tokend/tokend.toml"]
