#!/usr/bin/env bash
# verify-standin-images.sh — smoke-test the stand-in images built by build-standin-images.sh.
#
# Usage (after provision-docker.sh and build-standin-images.sh):
#   bash scripts/ci/verify-standin-images.sh
#
# Checks:
#   python stand-in:   `python` runs, `ssl` imports, pip reaches PyPI through the TLS-intercepting
#                      proxy with the baked-in CA bundle (pip download --no-deps six).
#   postgres stand-in: starts with POSTGRES_USER/PASSWORD/DB on a fresh named volume, published on
#                      127.0.0.1 only; pg_isready answers inside; password auth over TCP works (from
#                      another container, and from the host if it has psql) and a wrong password is
#                      refused; SIGTERM stops it within STOP_MAX_SECONDS; a restart on the same volume
#                      keeps the data. Everything it creates is removed at exit.
#
# Knobs (environment variables, defaults in brackets):
#   PYTHON_IMAGE      [python:3.11.11-slim-bookworm]
#   POSTGRES_IMAGE    [postgres:15.10-bookworm]
#   PIP_PROBE_PACKAGE [six]
#   READY_TIMEOUT     [60] seconds to wait for pg_isready
#   STOP_MAX_SECONDS  [10] SIGTERM must stop the server within this
#   NAME_PREFIX       [labci-verify-$$] prefix of the containers/volume it creates
set -euo pipefail

PYTHON_IMAGE="${PYTHON_IMAGE:-python:3.11.11-slim-bookworm}"
POSTGRES_IMAGE="${POSTGRES_IMAGE:-postgres:15.10-bookworm}"
PIP_PROBE_PACKAGE="${PIP_PROBE_PACKAGE:-six}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
STOP_MAX_SECONDS="${STOP_MAX_SECONDS:-10}"
NAME_PREFIX="${NAME_PREFIX:-labci-verify-$$}"

log() { printf '[verify-standins %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[verify-standins] ERROR: %s\n' "$*" >&2; exit 1; }

volume="$NAME_PREFIX-pgdata"
pg1="$NAME_PREFIX-pg1"
pg2="$NAME_PREFIX-pg2"
cleanup() {
    local rc=$?
    for c in "$pg1" "$pg2"; do
        if docker container inspect "$c" >/dev/null 2>&1; then
            if [ "$rc" != 0 ]; then
                log "logs of $c:"
                docker logs --tail 30 "$c" 2>&1 | sed 's/^/    /'
            fi
            docker rm -f "$c" >/dev/null
        fi
    done
    if docker volume inspect "$volume" >/dev/null 2>&1; then
        docker volume rm "$volume" >/dev/null
    fi
    exit "$rc"
}
trap cleanup EXIT

# --- python -------------------------------------------------------------------------------------
log "$PYTHON_IMAGE: python + ssl"
docker run --rm "$PYTHON_IMAGE" python -c 'import sys, ssl; print(sys.version); print(ssl.OPENSSL_VERSION)'
log "$PYTHON_IMAGE: pip download --no-deps $PIP_PROBE_PACKAGE (PyPI through the proxy, CA bundle in the image)"
docker run --rm "$PYTHON_IMAGE" python -m pip download -q --no-deps -d /tmp/pip-probe "$PIP_PROBE_PACKAGE"

# --- postgres -----------------------------------------------------------------------------------
pg_env=(-e POSTGRES_USER=prefect -e POSTGRES_PASSWORD=prefect -e POSTGRES_DB=prefect)
start_pg() {  # name
    docker run -d --name "$1" "${pg_env[@]}" -v "$volume:/var/lib/postgresql/data" \
        -p 127.0.0.1::5432 "$POSTGRES_IMAGE" >/dev/null
    local deadline=$((SECONDS + READY_TIMEOUT))
    # -h 127.0.0.1: the init-time temporary server listens on the unix socket only, so a TCP probe
    # does not report "ready" before the real server is up.
    until docker exec "$1" pg_isready -q -h 127.0.0.1 -U prefect -d prefect; do
        [ "$SECONDS" -lt "$deadline" ] || die "$1: pg_isready did not answer within ${READY_TIMEOUT}s"
        [ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ] || die "$1 exited"
        sleep 0.5
    done
}
psql_in_container() {  # name password sql
    local ip
    ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1")"
    docker run --rm -e PGPASSWORD="$2" --entrypoint psql "$POSTGRES_IMAGE" \
        -v ON_ERROR_STOP=1 -tA -h "$ip" -U prefect -d prefect -c "$3"
}

docker volume create "$volume" >/dev/null
log "$POSTGRES_IMAGE: first start on fresh volume $volume"
t0=$SECONDS
start_pg "$pg1"
log "ready after ~$((SECONDS - t0))s; pg_isready inside: $(docker exec "$pg1" pg_isready -U prefect)"
[ "$(docker exec "$pg1" stat -c %U /proc/1)" = postgres ] || die "PID 1 does not run as postgres"

log "password auth over TCP from another container; create a table"
psql_in_container "$pg1" prefect "CREATE TABLE standin_probe(id int PRIMARY KEY, note text); INSERT INTO standin_probe VALUES (1, 'survives restart');"
if psql_in_container "$pg1" wrong-password 'SELECT 1' >/dev/null 2>&1; then
    die "a wrong password was accepted"
fi
log "a wrong password is refused"
if command -v psql >/dev/null; then
    port="$(docker port "$pg1" 5432/tcp | head -n1 | sed 's/.*://')"
    log "host psql over 127.0.0.1:$port with the password"
    PGPASSWORD=prefect psql -v ON_ERROR_STOP=1 -tA "host=127.0.0.1 port=$port user=prefect dbname=prefect" \
        -c 'SELECT current_user, count(*) FROM standin_probe GROUP BY 1'
else
    log "host has no psql: skipping the host-side check"
fi

log "SIGTERM must stop it within ${STOP_MAX_SECONDS}s"
start_ns=$(date +%s%N)
docker kill -s TERM "$pg1" >/dev/null
timeout "$STOP_MAX_SECONDS" docker wait "$pg1" >/dev/null || die "$pg1 did not stop within ${STOP_MAX_SECONDS}s of SIGTERM"
log "stopped in $(( ($(date +%s%N) - start_ns) / 1000000 )) ms, exit code $(docker inspect -f '{{.State.ExitCode}}' "$pg1")"
docker rm "$pg1" >/dev/null

log "restart on the same volume"
start_pg "$pg2"
# Capture first: under pipefail, `docker logs | grep -q` fails when grep exits early (SIGPIPE).
pg2_log="$(docker logs "$pg2" 2>&1)"
grep -q 'skipping initialization' <<<"$pg2_log" || die "$pg2 re-initialised the volume"
[ "$(psql_in_container "$pg2" prefect 'SELECT note FROM standin_probe WHERE id = 1')" = "survives restart" ] \
    || die "data did not survive the restart"
log "data survived the restart"
start_ns=$(date +%s%N)
docker stop "$pg2" >/dev/null
log "docker stop (STOPSIGNAL SIGINT) took $(( ($(date +%s%N) - start_ns) / 1000000 )) ms"

log "all stand-in checks passed"
