# syntax=docker/dockerfile:1
# The program images, one target each. Build from the repository root:
#   docker build --target operator -t tgbot-operator:0.1.0 .
#   docker build --target sidecar  -t tgbot-sidecar:0.1.0 .
#
# One file, so the builder and the runtime stages are written once: each target adds only its
# own distribution (plus tgbot-kit, which every program depends on), its labels, ports and
# entrypoint. A target builds only the stages it needs.
#
# Debian slim with Debian's Python 3.11 (bookworm): the tests build this base from Debian's packages
# under the same name (hack/build-images.sh), a production build pulls the real one. Pin it by
# digest too (debian:bookworm-slim@sha256:...) in the release pipeline. Builder and runtime take
# python3 from the same base: /opt/venv points at /usr/bin/python3.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/venv
# The kit every program depends on, by path (file:///src/kit): never by name from an index.
# .dockerignore keeps everything else (tests, docs, charts) out of the context.
COPY kit/pyproject.toml ./kit/
COPY kit/tgbot_kit ./kit/tgbot_kit

FROM ${BASE_IMAGE} AS runtime
# Only the interpreter (no venv module, no pip). A named user for uid 65532 (getpass.getuser()
# needs a passwd entry); no home, no shell.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log \
 && groupadd --system --gid 65532 tgbot \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin tgbot
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 65532:65532

# --- tgbot-operator ------------------------------------------------------------------------------
FROM builder AS operator-venv
COPY operator/pyproject.toml ./operator/
COPY operator/tgbot_operator ./operator/tgbot_operator
# Install from the wheel file itself (never by name from an index, where a package of the same name
# could win), then drop pip from the venv: the runtime does not install anything. No `kubernetes`
# client: in a pod the operator logs in with its ServiceAccount (login.py), and kopf would import
# the client (~43 MB of RSS) whenever it is there; the check proves it is not.
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels ./operator \
 && /opt/venv/bin/pip install "$(echo /wheels/tgbot_operator-*.whl)" \
 && /opt/venv/bin/pip uninstall --yes pip \
 && /opt/venv/bin/python -c "import importlib.util as u, tgbot_operator.cli; assert not u.find_spec('kubernetes')" \
 && /opt/venv/bin/tgbot-operator --help >/dev/null

FROM runtime AS operator
LABEL org.opencontainers.image.title="tgbot-operator" \
      org.opencontainers.image.description="Registers and rotates the webhooks of TelegramBot resources" \
      org.opencontainers.image.source="https://github.com/tgbot-dev/telegram-bot-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=operator-venv /opt/venv /opt/venv
# 8080: liveness (/healthz, --liveness-listen); 9090: Prometheus metrics (--metrics-listen).
EXPOSE 8080 9090
ENTRYPOINT ["/opt/venv/bin/tgbot-operator"]

# --- tgbot-sidecar -------------------------------------------------------------------------------
FROM builder AS sidecar-venv
COPY sidecar/pyproject.toml ./sidecar/
COPY sidecar/tgbot_sidecar ./sidecar/tgbot_sidecar
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels ./sidecar \
 && /opt/venv/bin/pip install "$(echo /wheels/tgbot_sidecar-*.whl)" \
 && /opt/venv/bin/pip uninstall --yes pip \
 && /opt/venv/bin/tgbot-sidecar --help >/dev/null

FROM runtime AS sidecar
LABEL org.opencontainers.image.title="tgbot-sidecar" \
      org.opencontainers.image.description="Receives Telegram webhooks, checks them and forwards updates to the bot" \
      org.opencontainers.image.source="https://github.com/tgbot-dev/telegram-bot-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=sidecar-venv /opt/venv /opt/venv
# 8443: webhook (--listen); 9090: /healthz, /readyz, /metrics (--admin-listen).
EXPOSE 8443 9090
ENTRYPOINT ["/opt/venv/bin/tgbot-sidecar"]
