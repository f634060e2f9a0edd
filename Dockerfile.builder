# slugbuilder image: a source tarball on stdin, a slug on stdout.
#
#   docker build -f Dockerfile.builder -t slugbuilder .
#   git archive HEAD | docker run -i --rm slugbuilder > slug.tgz
#   git archive HEAD | docker run -i --rm -v slugcache:/cache slugbuilder > slug.tgz
#
# Base images are build ARGs so machines without Docker Hub (and the tests)
# can pass their own: STACK_IMAGE must provide bash and git (python3 for the
# python buildpack), NODE_IMAGE must keep node and npm where the official node
# images do (/usr/local/bin/node, /usr/local/lib/node_modules/npm).
ARG STACK_IMAGE=heroku/heroku:24-build
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS node

# Compile TypeScript with the dev dependencies, then drop them.
FROM node AS build
WORKDIR /opt/slugkit
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" would compile before the sources are copied in.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY shared shared
COPY slugbuilder slugbuilder
COPY slugrunner slugrunner
COPY scripts scripts
# tsc, then each CLI bundled into one file (scripts/bundle.ts): start-up time.
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${STACK_IMAGE}
ARG STACK=heroku-24
ARG SLUGKIT_UID=1500
# Heroku's stack images default to a non-root user; setup needs root.
USER root

# bubblewrap, for --sandbox on/auto where the container may make namespaces
# (the image's default is SLUGKIT_SANDBOX=off, below); libdeflate-gzip, which
# compresses slugs and layers in about half zlib's CPU (SLUGKIT_GZIP), where
# the stack's archive has it. Each skipped when the stack has it.
RUN command -v bwrap >/dev/null && command -v libdeflate-gzip >/dev/null \
 || { apt-get update \
   && { command -v bwrap >/dev/null || apt-get install -y --no-install-recommends bubblewrap; } \
   && { command -v libdeflate-gzip >/dev/null || apt-get install -y --no-install-recommends libdeflate-tools \
        || echo "libdeflate-tools is not in this stack's archive: slugs are compressed by Node's zlib"; } \
   && rm -rf /var/lib/apt/lists/*; }

# node and npm: slugbuilder itself runs on node, and the nodejs buildpack uses both.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
COPY --from=build /opt/slugkit/package.json /opt/slugkit/package.json
COPY --from=build /opt/slugkit/node_modules /opt/slugkit/node_modules
COPY --from=build /opt/slugkit/dist /opt/slugkit/dist
COPY buildpacks /opt/slugkit/buildpacks
# The bash launcher every app image gets as its own layer (slugbuilder/image/launcher-layer.ts).
COPY bin/slugrunner bin/dyno.bash /opt/slugkit/bin/

# Wrapper scripts rather than symlinks to dist/*.js: they do not depend on the
# compiled files' shebang or mode, and `exec` keeps node as the only process.
# The unprivileged user is in group 0 with group-writable dirs, so an arbitrary
# --user UID:0 (OpenShift) can build too.
RUN ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -sf ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && printf '#!/bin/sh\nexec node -- /opt/slugkit/dist/slugbuilder/cli.js "$@"\n' > /usr/local/bin/slugbuilder \
 && chmod 0755 /usr/local/bin/slugbuilder \
 && useradd --uid "$SLUGKIT_UID" --gid 0 --home-dir /home/slugkit --create-home --shell /bin/bash slugkit \
 && mkdir -p /cache /app \
 && chown "$SLUGKIT_UID:0" /cache /app /home/slugkit \
 && chmod 0775 /cache /app /home/slugkit \
 && node --version

# /app: the empty dir apps are built in place in (slugbuilder's default
# --app-dir), so absolute paths buildpacks write hold where slugrunner runs the app.
# /cache: the build cache (buildpacks' CACHE_DIR). Mount a volume there to keep
# it across builds: docker run -i --rm -v slugcache:/cache slugbuilder
# SLUGKIT_SANDBOX=off: the container is the build's sandbox (docs/docker.md);
# Docker's default seccomp profile refuses the namespaces bwrap needs, so auto
# would only warn on every build. Pass -e SLUGKIT_SANDBOX=on where it can work.
ENV STACK=${STACK} \
    SLUGKIT_SANDBOX=off \
    SLUGBUILDER_CACHE_DIR=/cache \
    HOME=/home/slugkit
USER ${SLUGKIT_UID}:0
WORKDIR /home/slugkit
ENTRYPOINT ["slugbuilder"]
