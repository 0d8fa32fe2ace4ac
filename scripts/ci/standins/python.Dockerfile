# CI stand-in for python:3.11.11-slim-bookworm (see scripts/ci/build-standin-images.sh).
# No container registry is reachable on the CI/dev machines, so this image is built locally from a
# debootstrap'ed Debian bookworm rootfs (imported as ROOTFS_IMAGE) and Debian's own python3 3.11.x.
# It is NOT the official image: same Debian release and same Python minor version (3.11), but the
# patch version is Debian's (see the lab-ci.python-version label), and Python lives in /usr/bin.
ARG ROOTFS_IMAGE=lab-ci/bookworm-rootfs:latest
FROM ${ROOTFS_IMAGE}

ARG PYTHON_ACTUAL_VERSION=unknown
ARG STANDIN_TAG=python:3.11.11-slim-bookworm

# The host's CA bundle (copied into the build context at build time, never committed): outbound
# HTTPS goes through a TLS-intercepting proxy whose CA is only in the host's bundle.
COPY host-ca-bundle.crt /usr/local/share/lab-ci/host-ca-bundle.crt

ENV LANG=C.UTF-8 \
    PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/usr/local/share/lab-ci/host-ca-bundle.crt \
    SSL_CERT_FILE=/usr/local/share/lab-ci/host-ca-bundle.crt \
    REQUESTS_CA_BUNDLE=/usr/local/share/lab-ci/host-ca-bundle.crt

# The official image has `python` (and a pip that may install system-wide): give the stand-in the
# same. Debian marks its python as externally managed (PEP 668); the official image does not.
RUN set -eux; \
    chmod 0644 /usr/local/share/lab-ci/host-ca-bundle.crt; \
    ln -sf /usr/bin/python3 /usr/local/bin/python; \
    rm -f /usr/lib/python3*/EXTERNALLY-MANAGED; \
    python --version; \
    python -m pip --version

LABEL org.opencontainers.image.title="CI stand-in for ${STANDIN_TAG}" \
      org.opencontainers.image.description="Local CI stand-in, NOT the official python image: built from a Debian bookworm minbase rootfs with Debian's python3 (${PYTHON_ACTUAL_VERSION}, same 3.11 minor version as the real tag) because no container registry is reachable on this machine." \
      lab-ci.standin="true" \
      lab-ci.standin-for="${STANDIN_TAG}" \
      lab-ci.python-version="${PYTHON_ACTUAL_VERSION}" \
      lab-ci.built-by="scripts/ci/build-standin-images.sh"

CMD ["python3"]
