# CI stand-in for postgres:15.10-bookworm (see scripts/ci/build-standin-images.sh).
# No container registry is reachable on the CI/dev machines, so this image is built locally on top of
# the Debian bookworm stand-in base with Debian's own postgresql-15 package (15.x; the exact Debian
# version is written to /usr/local/share/lab-ci/postgresql-version) and a small entrypoint
# (postgres-entrypoint.sh) that behaves like the official one for POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB, POSTGRES_HOST_AUTH_METHOD, POSTGRES_INITDB_ARGS, PGDATA and /docker-entrypoint-initdb.d.
ARG BASE_IMAGE=python:3.11.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG STANDIN_TAG=postgres:15.10-bookworm
ARG PG_MAJOR=15

# Same uid/gid as the official image, so data volumes are interchangeable.
RUN set -eux; \
    groupadd -r postgres --gid=999; \
    useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres; \
    install -d -o postgres -g postgres -m 0755 /var/lib/postgresql

# Debian's packages; like the official image, stop postgresql-common from creating a default cluster.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends postgresql-common; \
    sed -ri 's/^#?\s*create_main_cluster\s*=.*$/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf; \
    grep -q '^create_main_cluster = false$' /etc/postgresql-common/createcluster.conf; \
    apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}"; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    install -d -o postgres -g postgres -m 3777 /var/run/postgresql; \
    dpkg-query -W -f='${Version}\n' "postgresql-${PG_MAJOR}" > /usr/local/share/lab-ci/postgresql-version; \
    cat /usr/local/share/lab-ci/postgresql-version

ENV PG_MAJOR=${PG_MAJOR} \
    PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data

RUN set -eux; \
    install -d -o postgres -g postgres -m 1777 "$PGDATA"; \
    install -d -m 0755 /docker-entrypoint-initdb.d; \
    command -v postgres initdb pg_ctl pg_isready psql
VOLUME /var/lib/postgresql/data

COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh

LABEL org.opencontainers.image.title="CI stand-in for ${STANDIN_TAG}" \
      org.opencontainers.image.description="Local CI stand-in, NOT the official postgres image: Debian bookworm with Debian's postgresql-${PG_MAJOR} package (same major version as the real tag; exact version in /usr/local/share/lab-ci/postgresql-version) and a small entrypoint honouring POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB/PGDATA, built because no container registry is reachable on this machine." \
      lab-ci.standin="true" \
      lab-ci.standin-for="${STANDIN_TAG}" \
      lab-ci.postgres-major="${PG_MAJOR}" \
      lab-ci.built-by="scripts/ci/build-standin-images.sh"

ENTRYPOINT ["docker-entrypoint.sh"]
# As the official image: SIGINT = PostgreSQL "fast" shutdown (SIGTERM would be "smart" shutdown,
# which waits for connected clients to go away). The entrypoint execs postgres, so either signal
# reaches the server directly.
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
