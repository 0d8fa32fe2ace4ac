#!/usr/bin/env bash
# provision-docker.sh — give this Debian 12 (bookworm) machine a working Docker engine,
# the Compose v2 plugin (`docker compose`) and the buildx plugin (`docker buildx`).
#
# Usage (as root):
#   bash scripts/ci/provision-docker.sh
#
# What it does (each step is skipped when it is already done, so a second run takes seconds):
#   1. apt-get update + install Debian's `docker.io` (dockerd 20.10, containerd, runc) and
#      `debootstrap` (used by build-standin-images.sh).
#   2. Compose v2 and buildx are not packaged for bookworm (bookworm's `docker-compose` is the old
#      1.29 Python tool), so it downloads Debian 13 "trixie"'s `docker-compose` and `docker-buildx`
#      .deb files with a PRIVATE apt configuration (own sources dir, lists dir and cache dir; the
#      system's apt sources are never touched), using the mirror URI and keyring of the machine's
#      own /etc/apt/sources.list.d/debian.sources, unpacks them with `dpkg -x` and copies their
#      CLI plugins into /usr/local/lib/docker/cli-plugins/.
#   3. Starts `dockerd` in the background unless `docker info` already answers (log in
#      $DOCKERD_LOG, pid in $DOCKERD_PIDFILE) and waits until `docker info` answers.
#   4. Checks `docker compose version` and `docker buildx version`.
#
# Knobs (environment variables, defaults in brackets):
#   APT_SOURCES_FILE     [/etc/apt/sources.list.d/debian.sources] deb822 file to copy mirror+keyring from
#   DEBIAN_MIRROR        [first URI of APT_SOURCES_FILE that is not a -security one]
#   DEBIAN_KEYRING       [Signed-By of that entry, else /usr/share/keyrings/debian-archive-keyring.gpg]
#   PLUGIN_SUITE         [trixie] Debian suite the Compose/buildx .debs come from
#   PLUGIN_ARCH          [dpkg --print-architecture]
#   PLUGIN_DIR           [/usr/local/lib/docker/cli-plugins]
#   PRIVATE_APT_DIR      [/var/cache/lab-ci/apt-trixie] private apt state/cache + downloaded .debs
#   DOCKERD_LOG          [/var/log/lab-dockerd.log]
#   DOCKERD_PIDFILE      [/var/run/lab-dockerd.pid]
#   DOCKERD_ARGS         [] extra arguments for dockerd (word-split)
#   DOCKERD_WAIT_SECONDS [60] how long to wait for `docker info` to answer
#   FORCE_PLUGINS        [0] 1 = re-download and reinstall the plugins even if they work
set -euo pipefail

APT_SOURCES_FILE="${APT_SOURCES_FILE:-/etc/apt/sources.list.d/debian.sources}"
PLUGIN_SUITE="${PLUGIN_SUITE:-trixie}"
PLUGIN_ARCH="${PLUGIN_ARCH:-$(dpkg --print-architecture)}"
PLUGIN_DIR="${PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}"
PRIVATE_APT_DIR="${PRIVATE_APT_DIR:-/var/cache/lab-ci/apt-${PLUGIN_SUITE}}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/lab-dockerd.log}"
DOCKERD_PIDFILE="${DOCKERD_PIDFILE:-/var/run/lab-dockerd.pid}"
DOCKERD_ARGS="${DOCKERD_ARGS:-}"
DOCKERD_WAIT_SECONDS="${DOCKERD_WAIT_SECONDS:-60}"
FORCE_PLUGINS="${FORCE_PLUGINS:-0}"

log() { printf '[provision-docker %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[provision-docker] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
export DEBIAN_FRONTEND=noninteractive

# --- mirror + keyring from the machine's own deb822 sources ------------------------------------
# Prints "URI KEYRING" of the first stanza whose URIs are not a -security archive.
read_mirror_from_sources() {
    awk '
        function flush() {
            if (uri != "" && uri !~ /security/ && !done) { print uri, (key == "" ? "-" : key); done = 1 }
            uri = ""; key = ""
        }
        /^[[:space:]]*$/ { flush(); next }
        /^[[:space:]]*#/ { next }
        tolower($1) == "uris:"      { uri = $2 }
        tolower($1) == "signed-by:" { key = $2 }
        END { flush() }
    ' "$1"
}
if [ -z "${DEBIAN_MIRROR:-}" ] || [ -z "${DEBIAN_KEYRING:-}" ]; then
    [ -r "$APT_SOURCES_FILE" ] || die "cannot read $APT_SOURCES_FILE (set DEBIAN_MIRROR and DEBIAN_KEYRING)"
    read -r _src_mirror _src_key < <(read_mirror_from_sources "$APT_SOURCES_FILE") \
        || die "no usable 'URIs:' entry in $APT_SOURCES_FILE"
    DEBIAN_MIRROR="${DEBIAN_MIRROR:-$_src_mirror}"
    if [ "$_src_key" = "-" ]; then _src_key=/usr/share/keyrings/debian-archive-keyring.gpg; fi
    DEBIAN_KEYRING="${DEBIAN_KEYRING:-$_src_key}"
fi
[ -r "$DEBIAN_KEYRING" ] || die "keyring $DEBIAN_KEYRING not readable"

# --- 1. Debian packages --------------------------------------------------------------------------
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing_pkgs=()
for p in docker.io debootstrap; do
    pkg_installed "$p" || missing_pkgs+=("$p")
done
if [ "${#missing_pkgs[@]}" -gt 0 ]; then
    log "apt-get update"
    apt-get update -q
    log "apt-get install ${missing_pkgs[*]}"
    apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}"
else
    log "docker.io and debootstrap already installed ($(dpkg-query -W -f='${Version}' docker.io))"
fi
command -v dockerd >/dev/null || die "dockerd not on PATH after installing docker.io"

# --- 2. Compose v2 + buildx CLI plugins from Debian trixie --------------------------------------
plugins_work() {
    [ -x "$PLUGIN_DIR/docker-compose" ] && [ -x "$PLUGIN_DIR/docker-buildx" ] || return 1
    # `docker compose version` / `docker buildx version` need no engine.
    docker compose version >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1
}

if [ "$FORCE_PLUGINS" != 1 ] && plugins_work; then
    log "CLI plugins already installed in $PLUGIN_DIR"
else
    log "fetching docker-compose + docker-buildx .debs from Debian $PLUGIN_SUITE ($DEBIAN_MIRROR) with a private apt config in $PRIVATE_APT_DIR"
    mkdir -p "$PRIVATE_APT_DIR/sources.list.d" "$PRIVATE_APT_DIR/lists/partial" \
             "$PRIVATE_APT_DIR/cache/archives/partial" "$PRIVATE_APT_DIR/debs" "$PRIVATE_APT_DIR/preferences.d"
    cat >"$PRIVATE_APT_DIR/sources.list.d/$PLUGIN_SUITE.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $PLUGIN_SUITE
Components: main
Architectures: $PLUGIN_ARCH
Signed-By: $DEBIAN_KEYRING
EOF
    private_apt=(
        -o "Dir::Etc::SourceList=/dev/null"
        -o "Dir::Etc::SourceParts=$PRIVATE_APT_DIR/sources.list.d"
        -o "Dir::Etc::PreferencesParts=$PRIVATE_APT_DIR/preferences.d"
        -o "Dir::State::Lists=$PRIVATE_APT_DIR/lists"
        -o "Dir::Cache=$PRIVATE_APT_DIR/cache"
        -o "APT::Architecture=$PLUGIN_ARCH"
        -o "APT::Architectures=$PLUGIN_ARCH"
        -o "APT::Sandbox::User=root"
    )
    apt-get "${private_apt[@]}" update -q
    rm -f "$PRIVATE_APT_DIR/debs/"*.deb
    (cd "$PRIVATE_APT_DIR/debs" && apt-get "${private_apt[@]}" download docker-compose docker-buildx)
    extract_dir="$(mktemp -d)"
    trap 'rm -rf "$extract_dir"' EXIT
    for deb in "$PRIVATE_APT_DIR/debs/"*.deb; do
        log "unpacking $(basename "$deb")"
        dpkg -x "$deb" "$extract_dir"
    done
    [ -d "$extract_dir/usr/libexec/docker/cli-plugins" ] || die "no usr/libexec/docker/cli-plugins in the downloaded .debs"
    install -d "$PLUGIN_DIR"
    for plugin in "$extract_dir/usr/libexec/docker/cli-plugins/"*; do
        log "installing $PLUGIN_DIR/$(basename "$plugin")"
        install -m 0755 "$plugin" "$PLUGIN_DIR/"
    done
    plugins_work || die "plugins copied to $PLUGIN_DIR but 'docker compose version' / 'docker buildx version' fail"
fi

# --- 3. the engine ------------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
    log "docker engine already answers"
else
    if [ -s "$DOCKERD_PIDFILE" ] && kill -0 "$(cat "$DOCKERD_PIDFILE")" 2>/dev/null; then
        log "dockerd (pid $(cat "$DOCKERD_PIDFILE")) is running but not answering yet; waiting for it"
    else
        log "starting dockerd in the background (log $DOCKERD_LOG, pid file $DOCKERD_PIDFILE)"
        mkdir -p "$(dirname "$DOCKERD_LOG")" "$(dirname "$DOCKERD_PIDFILE")"
        # setsid: own session, so the engine outlives this script and its caller's job control.
        # shellcheck disable=SC2086  # DOCKERD_ARGS is meant to be word-split
        setsid nohup dockerd --pidfile "$DOCKERD_PIDFILE" $DOCKERD_ARGS >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    deadline=$((SECONDS + DOCKERD_WAIT_SECONDS))
    until docker info >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            printf '[provision-docker] ERROR: docker info did not answer within %ss. Last lines of %s:\n' \
                "$DOCKERD_WAIT_SECONDS" "$DOCKERD_LOG" >&2
            tail -n 40 "$DOCKERD_LOG" >&2
            exit 1
        fi
        sleep 1
    done
    log "docker engine answers"
fi

# --- 4. report ----------------------------------------------------------------------------------
log "engine: $(docker version --format 'server {{.Server.Version}} (API {{.Server.APIVersion}}), client {{.Client.Version}}')"
log "storage driver: $(docker info --format '{{.Driver}}'), cgroup v$(docker info --format '{{.CgroupVersion}}')"
log "$(docker compose version)"
log "$(docker buildx version)"
log "done"
