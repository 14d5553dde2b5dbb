# registrywatch: a static binary on a distroless, non-root runtime image.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t registrywatch .
#   docker run -v registrywatch:/var/lib/registrywatch \
#     -v $PWD/registrywatch.yaml:/etc/registrywatch/registrywatch.yaml:ro \
#     -v $PWD/ledger.key:/etc/registrywatch/ledger.key:ro registrywatch
#
# The build command is the Makefile's `static` target (a test keeps them equal):
# CGO for SQLite, linked statically, so the runtime image needs no libc.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first: this layer is cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -tags osusergo,netgo,sqlite_omit_load_extension -ldflags "-s -w -extldflags '-static' -X main.version=${VERSION}" -trimpath -o /out/registrywatch ./cmd/registrywatch
# The ledger directory, owned by the runtime's nonroot user (65532), so a new
# volume mounted there is writable.
RUN mkdir -p /out/var/lib/registrywatch

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/registrywatch /registrywatch
COPY --from=build --chown=65532:65532 /out/var/lib/registrywatch /var/lib/registrywatch
ENV REGISTRYWATCH_CONFIG=/etc/registrywatch/registrywatch.yaml
VOLUME /var/lib/registrywatch
# /healthz, /readyz, /metrics when http.listen is 0.0.0.0:9090 (the default listens on loopback only).
EXPOSE 9090
USER nonroot:nonroot
# distroless has no curl: the binary checks itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/registrywatch", "healthcheck"]
ENTRYPOINT ["/registrywatch"]
CMD ["run"]
