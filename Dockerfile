# Allot server image.
#   docker build -t allot-server:dev .
#   docker run --rm -p 50051:50051 -p 9464:9464 allot-server:dev
# Build stage: the same Debian 12 packages as a developer machine (scripts/install-deps.sh).
# Runtime stage: debian:12-slim with only the shared libraries the binaries link against.

FROM debian:12 AS build
WORKDIR /src
# Install dependencies first so that this layer is cached across source changes.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    && ninja -C /build allot-server allot-bench

FROM debian:12-slim AS runtime
# libopenblas0-pthread registers itself as the libblas.so.3 alternative that LibTorch uses
# (the reference BLAS is ~10x slower).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates \
        libcurl4 \
        libgrpc++1.51 \
        libmicrohttpd12 \
        libopenblas0-pthread \
        libprometheus-cpp-core1.0 \
        libprotobuf32 \
        libspdlog1.10 \
        libtorch1.13 \
        libyaml-cpp0.7 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 allot \
    && useradd --system --uid 10001 --gid allot --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin allot \
    && install -d -o allot -g allot -m 0755 /var/lib/allot/models \
    && install -d -m 0755 /etc/allot
COPY --from=build /build/allot-server /build/allot-bench /usr/local/bin/
COPY config/allot.yaml /etc/allot/allot.yaml
# Fail the image build if a shared library is missing or the shipped config does not validate.
RUN if ldd /usr/local/bin/allot-server /usr/local/bin/allot-bench | grep 'not found'; then exit 1; fi \
    && /usr/local/bin/allot-server --check-config --config /etc/allot/allot.yaml

USER 10001:10001
VOLUME /var/lib/allot/models
# 50051: gRPC (Allocator, grpc.health.v1, reflection); 9464: Prometheus /metrics.
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/allot-server", "--config", "/etc/allot/allot.yaml", "--model-dir", "/var/lib/allot/models"]
