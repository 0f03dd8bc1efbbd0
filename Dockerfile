# ados-work-runner images. Build the static binary first, on the machine
# (no builder stage: a build here must need no registry):
#
#   make static                                   # dist/ados-work-runner
#   docker build -t ados-work-runner:latest .     # target `full`, the default
#   docker build --target minimal -t ados-work-runner:minimal .
#
# Only the classic builder's features are used: with it every stage before
# the target is built, so the stages are ordered `minimal`, then `full`, and
# neither needs anything but its base. docs/docker.md has the details.

ARG BASE_IMAGE=node:22-bookworm-slim

# ---------------------------------------------------------------------------
# minimal: the static binary alone (CA roots are embedded in it). For
# `COPY --from=ados-work-runner:minimal /ados-work-runner …` into another
# image; it cannot clone (no git) and runs jobs only through a Docker
# executor pointed at an image that has git and the agents.
FROM scratch AS minimal
COPY dist/ados-work-runner /ados-work-runner
ENV WORKSPACE_DIR=/workspace \
    ADOS_HEALTH_ADDR=0.0.0.0:8080
VOLUME ["/workspace"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["/ados-work-runner", "healthcheck"]
ENTRYPOINT ["/ados-work-runner"]
CMD ["run"]

# ---------------------------------------------------------------------------
# full (the default, the ADOS docs' `ados-work-runner:latest`): Debian with
# git, ca-certificates, the Docker CLI, Node.js and the agent CLIs, so the
# docs' `docker run … -v /var/run/docker.sock:/var/run/docker.sock
# -v ados-workspace:/workspace ados-work-runner:latest` works as written.
FROM ${BASE_IMAGE} AS full
# npm packages of the agent CLIs; empty installs none.
ARG AGENT_PACKAGES="@anthropic-ai/claude-code @openai/codex @github/copilot"
# Bookworm packages the Docker CLI only inside `docker.io`, with the daemon,
# containerd and runc: the package is downloaded and only /usr/bin/docker is
# kept. Node.js comes from the base when it has one (the default base has
# Node 22, which the Copilot CLI needs), else from Debian (Node 18).
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get install -y --no-install-recommends git ca-certificates openssh-client; \
    cd /tmp; \
    apt-get download docker.io; \
    dpkg-deb --fsys-tarfile docker.io_*.deb | tar -x -C / ./usr/bin/docker; \
    rm -f docker.io_*.deb; \
    docker --version; \
    if [ -n "$AGENT_PACKAGES" ]; then \
        if ! command -v node >/dev/null; then \
            apt-get install -y --no-install-recommends nodejs npm; \
        fi; \
        npm install -g --omit=dev --no-fund --no-audit $AGENT_PACKAGES; \
        npm cache clean --force; \
    fi; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /root/.npm
COPY dist/ados-work-runner /usr/local/bin/ados-work-runner
# Jobs run in containers of their own, from this same image (`self`: the
# runner finds its own image through the mounted socket). The runner runs
# as root by default so that the mounted socket is usable as is; see
# docs/docker.md for --user with --group-add.
ENV WORKSPACE_DIR=/workspace \
    ADOS_HEALTH_ADDR=0.0.0.0:8080 \
    ADOS_EXECUTOR=docker \
    ADOS_JOB_IMAGE=self
VOLUME ["/workspace"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["ados-work-runner", "healthcheck"]
ENTRYPOINT ["ados-work-runner"]
CMD ["run"]
