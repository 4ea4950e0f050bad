# syntax=docker/dockerfile:1
# Hemostat daemon image: `hemostat run` with the config at /etc/hemostat/hemostat.yaml
# (mounted by the Helm chart). Build: docker build -t hemostat:0.1.0 .
#
# Pinned to a Python patch release and Debian release, never a floating `latest`; pin the
# digest too (python:...@sha256:...) where the build pipeline can refresh it.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: the hemostat wheel and every dependency's wheel, so the runtime stage installs
# offline from exactly what was built here, with no compiler in the final image.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY probes ./probes
COPY actions ./actions
COPY policies ./policies
RUN pip wheel . --wheel-dir /wheels

# --- runtime
FROM ${PYTHON_IMAGE} AS runtime
# Must match pyproject.toml's version: the wheel installed below.
ARG HEMOSTAT_VERSION=0.1.0
LABEL org.opencontainers.image.title="hemostat" \
      org.opencontainers.image.description="Incident first responder for Kubernetes apps" \
      org.opencontainers.image.version="${HEMOSTAT_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HEMOSTAT_CONFIG=/etc/hemostat/hemostat.yaml

# git: the git-deploys probe reads a deploy repository through GitPython, which needs the
# binary (and refuses to import without it). Not version-pinned: the pinned Debian release
# fixes the major version, and an exact pin would break on every security update.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install --yes --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric USER, and the
# chart's securityContext uses the same 10001.
RUN groupadd --system --gid 10001 hemostat \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin hemostat \
 && mkdir -p /etc/hemostat /var/lib/hemostat \
 && chown 10001:10001 /var/lib/hemostat

# Install from the wheels only (--no-index): nothing is fetched at this point. The bind mount
# keeps the wheels out of the image's layers.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels "hemostat==${HEMOSTAT_VERSION}"

USER 10001:10001
WORKDIR /var/lib/hemostat
# Webhook (POST /webhook/alertmanager), /metrics, /healthz, /readyz. No HEALTHCHECK: the
# Kubernetes liveness and readiness probes do that job.
EXPOSE 9095
ENTRYPOINT ["hemostat"]
CMD ["run"]
