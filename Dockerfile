# ados-work-runner in a FROM scratch image: one static binary, nothing else.
# Build the binary first with `make static` (dist/ados-work-runner), then:
#   docker build -t ados-work-runner .
# No registry is needed: the base is `scratch`.
#
# This image runs the runner itself. Jobs need git and the agent CLIs, which
# the Docker executor runs in per-job containers (Docker socket mounted);
# for the host executor use an image that has git and the agents installed.
FROM scratch
COPY dist/ados-work-runner /ados-work-runner
ENV WORKSPACE_DIR=/workspace \
    ADOS_HEALTH_ADDR=0.0.0.0:8080
VOLUME ["/workspace"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["/ados-work-runner", "healthcheck"]
ENTRYPOINT ["/ados-work-runner"]
CMD ["run"]
