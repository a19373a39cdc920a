# salespulse image: the `salespulse` command (worker by default; the simulator overrides CMD).
# Built by docker-compose.yml (`build: .`); settings come from SALESPULSE_* variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Project metadata first (README.md is the package's readme), then the code.
COPY pyproject.toml README.md ./
COPY streams/ streams/
COPY schemas/ schemas/
RUN pip install --no-cache-dir . \
    && rm -rf /src/build

# Non-root user. /var/lib/salespulse (the worker's RocksDB state) is created here so that a
# new named volume mounted on it starts out owned by this user.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin salespulse \
    && mkdir -p /var/lib/salespulse \
    && chown salespulse:salespulse /var/lib/salespulse
USER salespulse
WORKDIR /home/salespulse

EXPOSE 6066
CMD ["salespulse", "worker"]
