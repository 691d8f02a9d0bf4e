# syntax=docker/dockerfile:1
#
# provsec image: build with the full toolchain, run on a distroless Node.js base that has no shell,
# no package manager and no build tools, as a numeric non-root user, on a read-only root filesystem.
#
#   docker build -t provsec:$(git rev-parse --short HEAD) .
#
# No secret is needed to build and none is baked in: the KEK arrives at run time from the Vault
# Agent (KEY_FILE) and DATABASE_URL from a Kubernetes Secret (see docs/deploy.md). If a private
# npm registry is ever needed, pass its credentials with `RUN --mount=type=secret`, never ARG/ENV/COPY
# (those persist in the image's layers and history).
#
# Pin the base images by digest in your registry mirror (FROM image@sha256:...); the tags below are
# what the digests should track. NODE_MAJOR must match package.json "engines": 22 by default (Node 20
# reached end of life in April 2026); `--build-arg NODE_MAJOR=20` still builds the 20 image. Every
# stage uses it, so the runtime runs the Node the build compiled and installed for.
ARG NODE_MAJOR=22

# --- build: dev dependencies from the lock file, then TypeScript -> dist/ ---------------------------
FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /src
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency's install script runs here; the only ones we have download and
# unpack the dev-only embedded Postgres, which neither the build nor the image needs.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
RUN npm run build

# --- production dependencies only, into a clean tree -------------------------------------------------
FROM node:${NODE_MAJOR}-bookworm-slim AS prod-deps
WORKDIR /src
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
COPY package.json package-lock.json ./
# embedded-postgres (the developer's local database, ~60 MB of server binaries) is a dev
# dependency: the service loads it only by a dynamic import that production config never reaches.
RUN npm ci --omit=dev --ignore-scripts

# --- runtime ------------------------------------------------------------------------------------------
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot AS runtime
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
# Everything is owned by root and read-only to the service user: the process cannot rewrite its own
# code or migrations. The app root is found by package.json; migrations are read from /app/sql.
COPY --from=prod-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY sql ./sql
# 65532 is distroless's "nonroot"; numeric so Kubernetes' runAsNonRoot can verify it without
# looking up a user name.
USER 65532:65532
EXPOSE 8080
# No HEALTHCHECK: Kubernetes ignores it and probes /healthz and /readyz itself (k8s/base), and the
# image has no curl or shell to run one with. For plain `docker run`, probe http://HOST:8080/readyz.
# Node runs as PID 1 and handles SIGTERM itself (drains for SHUTDOWN_TIMEOUT_MS, then exits).
ENTRYPOINT ["/nodejs/bin/node"]
CMD ["dist/src/main.js"]
