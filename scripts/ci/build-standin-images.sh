#!/usr/bin/env bash
# build-standin-images.sh — build local stand-ins for the registry images the project uses,
# because no container registry is reachable on the CI/dev machines (`docker pull` fails).
#
# Usage (as root, after scripts/ci/provision-docker.sh):
#   bash scripts/ci/build-standin-images.sh
#
# Produces (each skipped when `docker image inspect` already finds it, unless FORCE=1):
#   python:3.11.11-slim-bookworm  Debian bookworm minbase rootfs (debootstrap, with Debian's python3
#                                 3.11.x, python3-venv, python3-pip, ca-certificates) imported as
#                                 $ROOTFS_IMAGE, plus standins/python.Dockerfile (host CA bundle,
#                                 PIP_CERT/SSL_CERT_FILE/REQUESTS_CA_BUNDLE, `python` symlink, LANG).
#   postgres:15.10-bookworm       the stand-in above + Debian's postgresql-15 (apt-get inside
#                                 `docker build`) + standins/postgres-entrypoint.sh.
# Both carry labels saying they are CI stand-ins (lab-ci.standin=true). The debootstrap rootfs
# tarball is cached in $CACHE_DIR, so a later run on the same machine skips debootstrap.
#
# Knobs (environment variables, defaults in brackets):
#   SUITE              [bookworm]
#   APT_SOURCES_FILE   [/etc/apt/sources.list.d/debian.sources] host deb822 sources: mirror for
#                      debootstrap, and copied into the rootfs as its apt sources
#   DEBIAN_MIRROR      [first non-security URI in APT_SOURCES_FILE]
#   ROOTFS_INCLUDE     [python3,python3-venv,python3-pip,ca-certificates]
#   CACHE_DIR          [/var/cache/lab-ci]
#   ROOTFS_TARBALL     [$CACHE_DIR/$SUITE-minbase-<hash of suite/include/mirror>.tar]
#   ROOTFS_IMAGE       [lab-ci/$SUITE-rootfs:minbase-<same hash>]
#   CA_BUNDLE          [/etc/ssl/certs/ca-certificates.crt] host CA bundle copied into the image
#   PYTHON_IMAGE       [python:3.11.11-slim-bookworm]
#   POSTGRES_IMAGE     [postgres:15.10-bookworm]
#   PG_MAJOR           [15]
#   STANDIN_DIR        [directory `standins` next to this script]
#   BUILD_IMAGES       [python postgres] which stand-ins to build
#   FORCE              [0] 1 = rebuild the images even if they exist (the cached tarball is reused;
#                      delete it to re-run debootstrap; Docker's layer cache is used unless
#                      DOCKER_BUILD_FLAGS=--no-cache)
#   DOCKER_BUILD_FLAGS []  extra `docker build` flags (word-split), e.g. --no-cache or --progress=plain
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE="${SUITE:-bookworm}"
APT_SOURCES_FILE="${APT_SOURCES_FILE:-/etc/apt/sources.list.d/debian.sources}"
ROOTFS_INCLUDE="${ROOTFS_INCLUDE:-python3,python3-venv,python3-pip,ca-certificates}"
CACHE_DIR="${CACHE_DIR:-/var/cache/lab-ci}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
PYTHON_IMAGE="${PYTHON_IMAGE:-python:3.11.11-slim-bookworm}"
POSTGRES_IMAGE="${POSTGRES_IMAGE:-postgres:15.10-bookworm}"
PG_MAJOR="${PG_MAJOR:-15}"
STANDIN_DIR="${STANDIN_DIR:-$SCRIPT_DIR/standins}"
BUILD_IMAGES="${BUILD_IMAGES:-python postgres}"
FORCE="${FORCE:-0}"
DOCKER_BUILD_FLAGS="${DOCKER_BUILD_FLAGS:-}"

log() { printf '[build-standins %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[build-standins] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap)"
docker info >/dev/null 2>&1 || die "docker engine does not answer: run scripts/ci/provision-docker.sh first"

if [ -z "${DEBIAN_MIRROR:-}" ]; then
    [ -r "$APT_SOURCES_FILE" ] || die "cannot read $APT_SOURCES_FILE (set DEBIAN_MIRROR)"
    DEBIAN_MIRROR="$(awk '
        /^[[:space:]]*#/ { next }
        tolower($1) == "uris:" && $2 !~ /security/ { print $2; exit }' "$APT_SOURCES_FILE")"
    [ -n "$DEBIAN_MIRROR" ] || die "no non-security 'URIs:' entry in $APT_SOURCES_FILE (set DEBIAN_MIRROR)"
fi
cache_key="$(printf '%s|%s|%s' "$SUITE" "$ROOTFS_INCLUDE" "$DEBIAN_MIRROR" | sha256sum | cut -c1-12)"
ROOTFS_TARBALL="${ROOTFS_TARBALL:-$CACHE_DIR/$SUITE-minbase-$cache_key.tar}"
ROOTFS_IMAGE="${ROOTFS_IMAGE:-lab-ci/$SUITE-rootfs:minbase-$cache_key}"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

# --- rootfs tarball (cached) + imported rootfs image -------------------------------------------
ensure_rootfs_image() {
    if image_exists "$ROOTFS_IMAGE"; then
        log "rootfs image $ROOTFS_IMAGE already exists"
        return
    fi
    if [ -s "$ROOTFS_TARBALL" ]; then
        log "reusing cached rootfs tarball $ROOTFS_TARBALL"
    else
        command -v debootstrap >/dev/null || die "debootstrap missing: run scripts/ci/provision-docker.sh first"
        mkdir -p "$CACHE_DIR"
        local rootfs="$CACHE_DIR/rootfs-$cache_key.tmp"
        rm -rf "$rootfs"
        log "debootstrap --variant=minbase --include=$ROOTFS_INCLUDE $SUITE $rootfs $DEBIAN_MIRROR"
        debootstrap --variant=minbase --include="$ROOTFS_INCLUDE" "$SUITE" "$rootfs" "$DEBIAN_MIRROR"
        log "tidying the rootfs (apt sources from $APT_SOURCES_FILE, no apt lists/caches)"
        if [ -r "$APT_SOURCES_FILE" ]; then
            rm -f "$rootfs/etc/apt/sources.list"
            install -m 0644 "$APT_SOURCES_FILE" "$rootfs/etc/apt/sources.list.d/debian.sources"
        fi
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
               "$rootfs"/var/log/*.log "$rootfs"/tmp/* "$rootfs"/root/.cache
        : >"$rootfs/etc/hostname"
        rm -f "$rootfs/etc/resolv.conf"  # docker mounts its own
        log "writing $ROOTFS_TARBALL"
        tar --numeric-owner -C "$rootfs" -cf "$ROOTFS_TARBALL.tmp" .
        mv "$ROOTFS_TARBALL.tmp" "$ROOTFS_TARBALL"
        rm -rf "$rootfs"
    fi
    log "docker import $ROOTFS_TARBALL $ROOTFS_IMAGE"
    docker import \
        -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]' \
        -m "debootstrap --variant=minbase --include=$ROOTFS_INCLUDE $SUITE (lab-ci stand-in base)" \
        - "$ROOTFS_IMAGE" <"$ROOTFS_TARBALL" >/dev/null
}

# --- python stand-in ----------------------------------------------------------------------------
build_python() {
    if [ "$FORCE" != 1 ] && image_exists "$PYTHON_IMAGE"; then
        log "$PYTHON_IMAGE already exists: skipping"
        return
    fi
    ensure_rootfs_image
    local py_version
    py_version="$(docker run --rm "$ROOTFS_IMAGE" python3 -c 'import platform; print(platform.python_version())')"
    log "building $PYTHON_IMAGE from $ROOTFS_IMAGE (Debian python3 $py_version)"
    local ctx="$workdir/python"
    mkdir -p "$ctx"
    [ -r "$CA_BUNDLE" ] || die "CA bundle $CA_BUNDLE not readable"
    cp "$CA_BUNDLE" "$ctx/host-ca-bundle.crt"
    # shellcheck disable=SC2086  # DOCKER_BUILD_FLAGS is meant to be word-split
    docker build $DOCKER_BUILD_FLAGS \
        -f "$STANDIN_DIR/python.Dockerfile" \
        --build-arg "ROOTFS_IMAGE=$ROOTFS_IMAGE" \
        --build-arg "PYTHON_ACTUAL_VERSION=$py_version" \
        --build-arg "STANDIN_TAG=$PYTHON_IMAGE" \
        -t "$PYTHON_IMAGE" "$ctx"
}

# --- postgres stand-in --------------------------------------------------------------------------
build_postgres() {
    if [ "$FORCE" != 1 ] && image_exists "$POSTGRES_IMAGE"; then
        log "$POSTGRES_IMAGE already exists: skipping"
        return
    fi
    image_exists "$PYTHON_IMAGE" || die "$POSTGRES_IMAGE is built on $PYTHON_IMAGE, which is missing (BUILD_IMAGES must include python)"
    log "building $POSTGRES_IMAGE from $PYTHON_IMAGE + Debian postgresql-$PG_MAJOR"
    local ctx="$workdir/postgres"
    mkdir -p "$ctx"
    install -m 0755 "$STANDIN_DIR/postgres-entrypoint.sh" "$ctx/postgres-entrypoint.sh"
    # shellcheck disable=SC2086  # DOCKER_BUILD_FLAGS is meant to be word-split
    docker build $DOCKER_BUILD_FLAGS \
        -f "$STANDIN_DIR/postgres.Dockerfile" \
        --build-arg "BASE_IMAGE=$PYTHON_IMAGE" \
        --build-arg "PG_MAJOR=$PG_MAJOR" \
        --build-arg "STANDIN_TAG=$POSTGRES_IMAGE" \
        -t "$POSTGRES_IMAGE" "$ctx"
    log "$POSTGRES_IMAGE has Debian postgresql-$PG_MAJOR $(docker run --rm --entrypoint cat "$POSTGRES_IMAGE" /usr/local/share/lab-ci/postgresql-version)"
}

for what in $BUILD_IMAGES; do
    case "$what" in
        python) build_python ;;
        postgres) build_postgres ;;
        *) die "unknown image '$what' in BUILD_IMAGES (python, postgres)" ;;
    esac
done

log "stand-in images:"
for img in $PYTHON_IMAGE $POSTGRES_IMAGE; do
    if image_exists "$img"; then
        log "  $img  $(docker image inspect --format '{{.Id}} {{.Size}} bytes, lab-ci.standin={{index .Config.Labels "lab-ci.standin"}}' "$img")"
    fi
done
