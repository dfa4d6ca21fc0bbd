# One image for the four services and the portal; docker-compose.yml picks one via `command`.
# BASE_IMAGE: the official Python image by default, pinned by digest (3.11.16; the index
# digest of its multi-platform image); scripts/containers/build-images.sh builds on a
# Debian bookworm base made from Debian's packages instead, where no image registry can be
# reached. Both have Python 3.11; the venv below gives either the same packages, each
# checked against the hashes requirements.txt locks.
ARG BASE_IMAGE=python:3.11.16-slim-bookworm@sha256:528257d48c1da0dcecc2e725d1ae34498d60c965f1241e39cd6a85a8859bdf84
FROM ${BASE_IMAGE}

# The Debian base has no Python yet; the official image has it and skips this.
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -m venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first so code edits don't invalidate this layer.
COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements.txt

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app

COPY shared/ shared/
COPY services/ services/

# Numeric UID so runtimes enforcing runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001

EXPOSE 8080 8081 8082 8083 8084

# Exec form: python is PID 1 and receives SIGTERM directly (graceful drain on `docker stop`).
CMD ["python", "-m", "services.intake"]
