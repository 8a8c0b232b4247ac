# The auth service as a container image: built from this checkout, run by node as a non-root user
# on a read-only root file system. Build: docker build -t grpc-auth .
# (test/deploy/dockerfile.test.ts runs these steps in clean directories: see docs/production.md.)

# Stage 1: compile TypeScript with every dependency the build needs.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json tsconfig.esm.json ./
COPY scripts ./scripts
COPY gen ./gen
COPY src ./src
RUN npm run build

# Stage 2: the runtime dependencies only, from the same lockfile, and the compiled service.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY gen/descriptors.binpb ./gen/descriptors.binpb
COPY migrations ./migrations
COPY proto/auth ./proto/auth
# The image's own user (uid 1000), never root; the service writes nothing to disk.
USER node
EXPOSE 50051 9464
ENV AUTH_ADDRESS=0.0.0.0:50051
# grpc-auth health reads AUTH_ADDRESS and the TLS settings; exit 0 when the service is SERVING.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["node", "dist/src/cli/main.js", "health"]
# node runs the service itself, so SIGTERM from `docker stop` reaches it and drains the calls.
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
