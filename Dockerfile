# One image for all four services; docker-compose.yml picks the service via `command`.
# Patch version matches the dev venv (Python 3.11.7).
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first so code edits don't invalidate this layer.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app

COPY shared/ shared/
COPY services/ services/

# Numeric UID so runtimes enforcing runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001

EXPOSE 8080 8081 8082 8083

# Exec form: python is PID 1 and receives SIGTERM directly (graceful drain on `docker stop`).
CMD ["python", "-m", "services.intake"]
