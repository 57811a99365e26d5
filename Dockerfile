# kdns container image: `docker build -t REGISTRY/kdns:TAG .` (see docs/deploy.md).
# Stage 1 builds wheels for kdns and its dependencies (uvloop included) and installs them into a
# virtualenv; stage 2 is the same slim Python base with only that virtualenv copied in.
#
# BASE is any Debian bookworm with Python 3.11 (`python3`, its venv module and CA certificates).
# Where the registry cannot be reached, `make image` builds one from Debian's packages
# (image/debian-base.sh) and passes it here; everyone else gets the official image.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# A build behind a TLS-inspecting proxy names its CA bundle (mounted for the build only).
ARG PIP_CERT
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kdns ./kdns
RUN if [ -z "${PIP_CERT:-}" ]; then unset PIP_CERT; fi \
    && python3 -m venv /opt/kdns \
    && /opt/kdns/bin/pip wheel --no-cache-dir --wheel-dir /wheels '.[fast]' \
    && /opt/kdns/bin/pip install --no-cache-dir --no-index --find-links /wheels 'kdns[fast]' \
    && /opt/kdns/bin/python -c 'import kdns.cli, uvloop' \
    && /opt/kdns/bin/python -m compileall -q /opt/kdns

FROM ${BASE}
LABEL org.opencontainers.image.title="kdns" \
      org.opencontainers.image.description="Kubernetes cluster DNS server in Python asyncio" \
      org.opencontainers.image.licenses="Apache-2.0"
# Bytecode was compiled at build time; the root filesystem is read-only at run time.
ENV PATH=/opt/kdns/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/kdns /opt/kdns
# Numeric, so the kubelet can verify runAsNonRoot without an /etc/passwd entry.
USER 65532:65532
# Port 53 needs the pod sysctl net.ipv4.ip_unprivileged_port_start=53 (deploy/deployment.yaml);
# 9153 metrics, 8080 /health, 8181 /ready.
EXPOSE 53/udp 53/tcp 9153/tcp 8080/tcp 8181/tcp
ENTRYPOINT ["/opt/kdns/bin/kdns"]
CMD ["serve", "--conf", "/etc/kdns/Corefile"]
