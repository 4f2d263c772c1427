# Dockerfile - bin/payments on Debian bookworm: built in one stage, run in a slim one.
#
#   docker build -t payments .
#   docker run --rm -e DATABASE_URL=... payments migrate up
#   docker run --rm -e DATABASE_URL=... -p 127.0.0.1:8080:8080 payments

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential libpq-dev libcivetweb-dev libjansson-dev libsodium-dev \
      libcurl4-openssl-dev libssl-dev libnats-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile openapi.yaml ./
COPY include/ include/
COPY src/ src/
COPY compat/ compat/
RUN make -j"$(nproc)" bin/payments

# The integration suite, run against the compose stack: docker compose --profile test up test
FROM build AS test
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-stripe postgresql-client nats-server openssl \
 && rm -rf /var/lib/apt/lists/*
COPY migrations/ migrations/
COPY scripts/ scripts/
COPY tests/ tests/
ENV PAYMENTS_TEST_EMBEDDED=0 PAYMENTS_RATE_LIMIT=0
CMD ["python3", "tests/integration/run.py", "-j", "2"]

FROM debian:bookworm-slim
# curl is for the compose healthcheck; ca-certificates for https webhook receivers.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpq5 libcivetweb1 libjansson4 libsodium23 libcurl4 libnats3.4 libssl3 \
      curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin payments
WORKDIR /app
COPY --from=build /src/bin/payments /app/payments
# The TLS shim for civetweb, where the binary's RPATH ($ORIGIN/../lib/payments) looks.
COPY --from=build /src/lib/payments/libssl.so /lib/payments/libssl.so
COPY migrations/ /app/migrations/
USER payments:payments
ENV PAYMENTS_LISTEN=0.0.0.0:8080 \
    PAYMENTS_MIGRATIONS_DIR=/app/migrations
EXPOSE 8080
ENTRYPOINT ["/app/payments"]
CMD ["serve"]
