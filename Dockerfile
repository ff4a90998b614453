# A minimal image for kernel-sync. Build: docker build -t kernel-sync .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
# reqwest verifies TLS against the operating system's certificate store.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/kernel-sync kernel-sync \
    && mkdir -p /var/lib/kernel-sync && chown kernel-sync /var/lib/kernel-sync
COPY --from=build /src/target/release/kernel-sync /usr/local/bin/kernel-sync
USER kernel-sync
WORKDIR /var/lib/kernel-sync
ENTRYPOINT ["/usr/local/bin/kernel-sync"]
CMD ["--config", "/etc/kernel-sync/kernel-sync.toml", "run"]
