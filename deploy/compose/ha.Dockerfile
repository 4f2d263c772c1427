# ha.Dockerfile - pg_auto_failover (pg_autoctl) on PostgreSQL 15, for compose.yaml's profile ha.
# The postgres:15 image already has the PostgreSQL apt repository, which ships the package.
FROM postgres:15
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15-auto-failover \
 && rm -rf /var/lib/apt/lists/*
USER postgres
