# syntax=docker/dockerfile:1
# Hemostat daemon image: `hemostat run` with the config at /etc/hemostat/hemostat.yaml
# (mounted by the Helm chart). Build: docker build -t hemostat:0.1.0 .
#
# PYTHON_IMAGE is the base of both stages: any Debian-based image with python3 (3.11+) and its
# venv module. The default is the official Python image, pinned to a patch release and Debian
# release (pin the digest too, python:...@sha256:..., where the build pipeline can refresh it).
# scripts/build-image.sh builds on a Debian base made from Debian's own packages instead, for
# machines that reach no container registry (this project's CI).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: the hemostat wheel and every dependency's wheel, so the runtime stage installs
# offline from exactly what was built here, with no compiler in the final image.
FROM ${PYTHON_IMAGE} AS build
# Extra pip options for an offline build, e.g. "--no-index --find-links=/wheelhouse" with the
# wheelhouse mounted by the builder (scripts/build-image.sh does this). Empty: PyPI as usual.
ARG PIP_EXTRA_ARGS=""
# Must match pyproject.toml's version: the wheel installed below.
ARG HEMOSTAT_VERSION=0.1.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY probes ./probes
COPY actions ./actions
COPY policies ./policies
# A virtualenv, not the system interpreter: Debian's python3 refuses system-wide pip installs
# (PEP 668), and the official image's would mix ours with its own.
# The runtime's virtualenv is made here too, from the wheels only (--no-index), and copied over
# whole: a copy is cached by its content, where an install from a bind-mounted stage was reused
# from a layer cache that cannot see what the mount holds (another source tree's install).
# hadolint ignore=SC2086
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip wheel . --wheel-dir /wheels ${PIP_EXTRA_ARGS} \
 && python3 -m venv /opt/hemostat \
 && /opt/hemostat/bin/pip install --no-index --find-links=/wheels "hemostat==${HEMOSTAT_VERSION}"

# --- runtime
FROM ${PYTHON_IMAGE} AS runtime
# Must match pyproject.toml's version: the wheel installed below.
ARG HEMOSTAT_VERSION=0.1.0
LABEL org.opencontainers.image.title="hemostat" \
      org.opencontainers.image.description="Incident first responder for Kubernetes apps" \
      org.opencontainers.image.version="${HEMOSTAT_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/hemostat/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HEMOSTAT_CONFIG=/etc/hemostat/hemostat.yaml

# git: the git-deploys probe reads a deploy repository through GitPython, which needs the
# binary (and refuses to import without it). Not version-pinned: the pinned Debian release
# fixes the major version, and an exact pin would break on every security update.
# A base that already has git (the Debian one scripts/build-image.sh makes) skips the install.
# hadolint ignore=DL3008
RUN command -v git >/dev/null \
 || { apt-get update \
      && apt-get install --yes --no-install-recommends git \
      && rm -rf /var/lib/apt/lists/*; }

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric USER, and the
# chart's securityContext uses the same 10001. The account is not called "hemostat": that is
# the proposer's name, and an OS user of that name must never look like it approved anything.
# Any other UID works too (OpenShift assigns one with no passwd entry).
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin app \
 && mkdir -p /etc/hemostat /var/lib/hemostat \
 && chown 10001:10001 /var/lib/hemostat

# The virtualenv built in the first stage (same base, so the same interpreter path); no wheels
# and no build tools reach this image.
COPY --from=build /opt/hemostat /opt/hemostat

USER 10001:10001
WORKDIR /var/lib/hemostat
# Webhook (POST /webhook/alertmanager), /metrics, /healthz, /readyz. No HEALTHCHECK: the
# Kubernetes liveness and readiness probes do that job.
EXPOSE 9095
ENTRYPOINT ["hemostat"]
CMD ["run"]
