# One image for the service and for workers. The service target installs no ML stack.
# The dashboard's pinned Plotly.js bundles (service/vendor/package-lock.json).
FROM node:20-slim AS dashboard-js
WORKDIR /vendor
COPY service/vendor/package.json service/vendor/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY momentum ./momentum
COPY service ./service
COPY --from=dashboard-js /vendor/node_modules ./service/vendor/node_modules
COPY trainer ./trainer
COPY migrations ./migrations

FROM base AS service
RUN pip install -c constraints.txt .
EXPOSE 8000
# docker-compose.yml runs `momentum db upgrade` once in its own container first; on its
# own, the image migrates and serves.
CMD ["sh", "-c", "momentum db upgrade && momentum serve --host 0.0.0.0 --port 8000"]

FROM base AS worker
# CPU torch by default; build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 for GPUs.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0 && pip install -c constraints.txt '.[trainer,keras]'
# Claims jobs from MOMENTUM_URL with MOMENTUM_TOKEN (the worker token) until stopped.
CMD ["momentum", "worker", "--no-progress"]
