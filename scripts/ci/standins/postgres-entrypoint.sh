#!/usr/bin/env bash
# postgres-entrypoint.sh — entrypoint of the CI stand-in for postgres:15.10-bookworm
# (built by scripts/ci/build-standin-images.sh from Debian's postgresql-15).
#
# Behaves like the official image's docker-entrypoint.sh for what the project uses:
#   POSTGRES_PASSWORD          password of POSTGRES_USER (required unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER              superuser created by initdb                         [postgres]
#   POSTGRES_DB                database created on first start                     [$POSTGRES_USER]
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for remote hosts                      [scram-sha-256]
#   POSTGRES_INITDB_ARGS       extra initdb arguments (word-split)                 []
#   PGDATA                     data directory (a volume)                           [/var/lib/postgresql/data]
#   /docker-entrypoint-initdb.d/*.sh|*.sql  run once, after the first initdb
# On first start (empty PGDATA) it runs initdb, listens on all addresses with password auth for
# remote hosts (local socket/loopback connections inside the container are trusted, as in the
# official image), creates POSTGRES_DB; on later starts it keeps the data. Then it execs the server
# as the `postgres` user in the foreground (PID 1), so `docker stop` signals reach it directly.
#
# Usage (as the image's ENTRYPOINT): docker-entrypoint.sh postgres [postgres options...]
#        docker-entrypoint.sh -c max_connections=200     (options alone imply `postgres`)
#        docker-entrypoint.sh any-other-command           (exec'd as is)
set -Eeuo pipefail

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
POSTGRES_HOST_AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
POSTGRES_INITDB_ARGS="${POSTGRES_INITDB_ARGS:-}"
PG_SOCKET_DIR="${PG_SOCKET_DIR:-/var/run/postgresql}"

log() { printf 'standin-entrypoint: %s\n' "$*" >&2; }

if [ "$#" -eq 0 ] || [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi
for arg in "${@:2}"; do  # as the official image: `postgres --version` etc. need no setup
    case "$arg" in -'?'|--help|--describe-config|-V|--version) exec "$@" ;; esac
done

# As root: fix ownership of the data dir (a fresh named volume is root-owned) and of the socket dir,
# then re-exec this script as the postgres user.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" "$PG_SOCKET_DIR"
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    chmod 0700 "$PGDATA"
    chown postgres:postgres "$PG_SOCKET_DIR"
    chmod 3777 "$PG_SOCKET_DIR"
    export HOME=/var/lib/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        log "ERROR: database is uninitialized and POSTGRES_PASSWORD is not set."
        log "       Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password)."
        exit 1
    fi
    log "PGDATA $PGDATA is empty: running initdb for superuser '$POSTGRES_USER'"
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is meant to be word-split
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        initdb --username="$POSTGRES_USER" -D "$PGDATA" \
            --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
    else
        initdb --username="$POSTGRES_USER" -D "$PGDATA" $POSTGRES_INITDB_ARGS
    fi

    printf "\n# added by the CI stand-in entrypoint\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    printf '\n# added by the CI stand-in entrypoint\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

    log "starting a temporary server on the unix socket only"
    PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432 -k $PG_SOCKET_DIR" -w start
    psql_cmd=(psql -v ON_ERROR_STOP=1 --no-psqlrc --host "$PG_SOCKET_DIR" --port 5432 --username "$POSTGRES_USER" --dbname postgres)
    if [ "$POSTGRES_DB" != postgres ]; then
        exists="$("${psql_cmd[@]}" -tA --set db="$POSTGRES_DB" <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
        if [ -z "$exists" ]; then
            log "creating database '$POSTGRES_DB'"
            "${psql_cmd[@]}" --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
        fi
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then log "running $f"; "$f"
                else log "sourcing $f"; # shellcheck disable=SC1090
                    . "$f"; fi ;;
            *.sql) log "running $f"; "${psql_cmd[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *.sql.gz) log "running $f"; gunzip -c "$f" | "${psql_cmd[@]}" --dbname "$POSTGRES_DB" ;;
            *) log "ignoring $f" ;;
        esac
    done
    log "stopping the temporary server"
    pg_ctl -D "$PGDATA" -m fast -w stop
    log "init done; PostgreSQL is ready for start up"
else
    log "PGDATA $PGDATA already holds a $(cat "$PGDATA/PG_VERSION") cluster: skipping initialization"
fi

exec "$@"
