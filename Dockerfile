# Allot server image.
#   docker build -t allot-server:dev .
#   docker run --rm -p 50051:50051 -p 9464:9464 allot-server:dev
# Build stage: the same Debian 12 packages as a developer machine (scripts/install-deps.sh).
# Runtime-libs stage: the runtime packages installed, and the binaries' ldd closure staged.
# Runtime stage: debian:12-slim with that closure, the CA certificates and the binaries.

FROM debian:12 AS build
WORKDIR /src
# Install dependencies first so that this layer is cached across source changes.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    && ninja -C /build allot-server allot-bench allot-train

# Debian's libtorch1.13 Depends on OpenCV, FFmpeg, GDAL, ... whose packages (and theirs) come to
# ~1.2 GB installed, while the binaries load ~515 MB of shared libraries (ldd; the biggest are
# libtorch_cpu, oneDNN, OpenBLAS, ICU data). So this stage installs the packages as a machine
# would and stages the binaries' ldd closure in /staging (scripts/stage-runtime-libs.sh), and the
# runtime stage copies only that. /base-libs.sha256 lists the base's own libraries, which the
# runtime stage has already and are not staged again.
FROM debian:12-slim AS runtime-libs
# libopenblas0-pthread registers itself as the libblas.so.3 alternative that LibTorch uses
# (the reference BLAS is ~10x slower); it is staged as the real file libblas.so.3.
RUN find /usr/lib* -xtype f -name '*.so*' -exec sha256sum {} + > /base-libs.sha256 \
    && apt-get update \
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
COPY scripts/stage-runtime-libs.sh /usr/local/sbin/
COPY --from=build /build/allot-server /build/allot-bench /build/allot-train /usr/local/bin/
# The CA certificates, for TLS to Prometheus (libcurl reads /etc/ssl/certs), and OpenSSL's
# configuration directory are copied as installed.
RUN stage-runtime-libs.sh --skip /base-libs.sha256 /staging \
        /usr/local/bin/allot-server /usr/local/bin/allot-bench /usr/local/bin/allot-train \
    && cp -a --parents /etc/ssl /usr/lib/ssl /usr/share/ca-certificates /staging/

FROM debian:12-slim AS runtime
COPY --from=runtime-libs /staging/ /
RUN ldconfig \
    && groupadd --system --gid 10001 allot \
    && useradd --system --uid 10001 --gid allot --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin allot \
    && install -d -o allot -g allot -m 0755 /var/lib/allot/models \
    && install -d -m 0755 /etc/allot
COPY --from=build /build/allot-server /build/allot-bench /build/allot-train /usr/local/bin/
COPY config/allot.yaml /etc/allot/allot.yaml
# Fail the image build if a shared library is missing or the shipped config does not validate.
RUN if ldd /usr/local/bin/allot-server /usr/local/bin/allot-bench /usr/local/bin/allot-train | grep 'not found'; then exit 1; fi \
    && /usr/local/bin/allot-server --check-config --config /etc/allot/allot.yaml

USER 10001:10001
VOLUME /var/lib/allot/models
# 50051: gRPC (Allocator, grpc.health.v1, reflection); 9464: Prometheus /metrics.
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/allot-server", "--config", "/etc/allot/allot.yaml", "--model-dir", "/var/lib/allot/models"]
