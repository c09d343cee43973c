# vaxcred container image: a build stage compiles the `vaxcred` binary, a slim runtime stage
# runs it as an unprivileged user. Build: docker build -t vaxcred .
# Run:   docker run -p 8080:8080 -v vaxcred-data:/var/lib/vaxcred vaxcred serve

# --- build ------------------------------------------------------------------------------------
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# pkg-config/libssl-dev cover crates that link OpenSSL; harmless otherwise.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked -p vaxcred \
 && cp target/release/vaxcred /usr/local/bin/vaxcred

# --- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# ca-certificates: outbound TLS (EHR FHIR APIs, SMS gateway, wallet webhooks, OTLP).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 vaxcred \
 && useradd --system --uid 10001 --gid vaxcred --home-dir /var/lib/vaxcred --shell /usr/sbin/nologin vaxcred \
 && mkdir -p /var/lib/vaxcred/keys \
 && chown -R vaxcred:vaxcred /var/lib/vaxcred \
 && chmod 0700 /var/lib/vaxcred/keys
COPY --from=build /usr/local/bin/vaxcred /usr/local/bin/vaxcred

USER 10001:10001
WORKDIR /var/lib/vaxcred
ENV VAXCRED_HTTP__BIND=0.0.0.0:8080 \
    VAXCRED_DATA_DIR=/var/lib/vaxcred \
    VAXCRED_KEYS__DIR=/var/lib/vaxcred/keys
EXPOSE 8080
VOLUME ["/var/lib/vaxcred"]
# No curl in the image: Kubernetes probes /health/live and /health/ready with httpGet, the compose
# healthcheck speaks HTTP through bash's /dev/tcp.
ENTRYPOINT ["/usr/local/bin/vaxcred"]
CMD ["serve"]
