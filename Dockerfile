# Dockerfile - bin/payments on Debian bookworm: built in one stage, run in a slim one.
#
#   docker build -t payments .
#   docker run --rm -e DATABASE_URL=... payments migrate up
#   docker run --rm -e DATABASE_URL=... -p 127.0.0.1:8080:8080 payments

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential libpq-dev libcivetweb-dev libjansson-dev libsodium-dev \
      libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY include/ include/
COPY src/ src/
RUN make -j"$(nproc)" bin/payments

FROM debian:bookworm-slim
# curl is for the compose healthcheck; ca-certificates for https webhook receivers.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpq5 libcivetweb1 libjansson4 libsodium23 libcurl4 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin payments
WORKDIR /app
COPY --from=build /src/bin/payments /app/payments
COPY migrations/ /app/migrations/
USER payments:payments
ENV PAYMENTS_LISTEN=0.0.0.0:8080 \
    PAYMENTS_MIGRATIONS_DIR=/app/migrations
EXPOSE 8080
ENTRYPOINT ["/app/payments"]
CMD ["serve"]
