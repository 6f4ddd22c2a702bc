#!/usr/bin/env bash
# The image, built and run for real. No image registry is reachable here, so the debian:12 and
# debian:12-slim bases are one minimal Debian 12 made with debootstrap and `podman import`ed
# (cached under ALLOT_IMAGE_CACHE). `podman build --isolation=chroot` builds the Dockerfile; this
# machine cannot start containers (cgroups, rlimits), so the runtime image's root filesystem is
# exported and its entrypoint run with chroot as the image's user (10001), with the Dockerfile's
# config and an empty model volume. Passes when the server answers grpc.health.v1 Check with
# SERVING and /metrics with its metrics, and allot-train trains a bundle on two ranks from it.
#
# Usage: bash deploy/checks/image.sh   (as root; installs podman and debootstrap when missing)
# Environment: ALLOT_IMAGE_CACHE (/var/cache/allot-image), ALLOT_IMAGE_MIRROR
#   (http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=${ALLOT_IMAGE_CACHE:-/var/cache/allot-image}
mirror=${ALLOT_IMAGE_MIRROR:-http://deb.debian.org/debian}
image=localhost/allot-server:check
die() {
  echo "image: FAIL: $*" >&2
  exit 1
}
log() { echo "image: $*"; }

if ! command -v podman > /dev/null || ! command -v debootstrap > /dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends podman \
    debootstrap > /dev/null
fi

# 1. The base images, made once.
if ! podman image exists localhost/debian:12; then
  log "making the debian:12 base with debootstrap from $mirror"
  rm -rf "$cache/rootfs"
  mkdir -p "$cache"
  debootstrap --variant=minbase bookworm "$cache/rootfs" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; die "debootstrap"; }
  tar -C "$cache/rootfs" -c . | podman import - localhost/debian:12 > /dev/null
  rm -rf "$cache/rootfs"
fi
podman tag localhost/debian:12 localhost/debian:12-slim

# 2. The image.
log "podman build --isolation=chroot (a few minutes)"
work=$(mktemp -d /tmp/allot-image-XXXXXX)
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2> /dev/null && wait "$server" 2> /dev/null
  umount "$work/rootfs/proc" "$work/rootfs/dev" 2> /dev/null || true
  podman rm -f allot-image-check > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
podman build --isolation=chroot -t "$image" . > "$work/build.log" 2>&1 ||
  { tail -40 "$work/build.log" >&2; die "podman build"; }
# Earlier runs' untagged build stages; this run's stays as the next one's layer cache.
podman image prune -f --filter until=15m > /dev/null

# 3. Its root filesystem, run as the image runs it.
podman create --name allot-image-check "$image" > /dev/null
mkdir "$work/rootfs"
podman export allot-image-check | tar -C "$work/rootfs" -x
# The runtime stage copies the CA certificates (libcurl's TLS to Prometheus), not the package.
[[ -s $work/rootfs/etc/ssl/certs/ca-certificates.crt ]] || die "no /etc/ssl/certs/ca-certificates.crt"
mount -t proc proc "$work/rootfs/proc"
mount --bind /dev "$work/rootfs/dev"
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[[ $user == 10001:10001 ]] || die "the image runs as '$user', not 10001:10001"
read -r -a command <<< "$(podman image inspect --format '{{range .Config.Entrypoint}}{{.}} {{end}}' \
  "$image")"
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
metrics_port=$(free_port)
chroot --userspec="$user" "$work/rootfs" "${command[@]}" --listen "127.0.0.1:$port" \
  --metrics-listen "127.0.0.1:$metrics_port" > "$work/server.log" 2>&1 &
server=$!

# 4. Health and metrics, from outside.
for _ in $(seq 100); do
  curl -sf "127.0.0.1:$metrics_port/metrics" > "$work/metrics" 2> /dev/null && break
  kill -0 "$server" 2> /dev/null || { cat "$work/server.log" >&2; die "the server exited"; }
  sleep 0.2
done
grep -q '^allot_' "$work/metrics" || { cat "$work/server.log" >&2; die "no allot_ metrics"; }
/usr/bin/python3 - "$port" << 'EOF' || die "health check"  # Debian's, with python3-grpcio
# grpc.health.v1.Health/Check by hand: an empty request; SERVING is field 1 = 1 (bytes 08 01).
import sys, grpc
channel = grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}")
check = channel.unary_unary("/grpc.health.v1.Health/Check")
answer = check(b"", timeout=10)
if answer != b"\x08\x01":
    sys.exit(f"health answered {answer!r}, not SERVING")
EOF

# 5. allot-train from the image as the training Job runs it: two data-parallel ranks over Gloo on
# loopback, as the image's user, on a small simulator log (allot-sim is not in the image).
trained="allot-train not run (no build/allot-sim)"
if [[ -x build/allot-sim ]]; then
  build/allot-sim generate --out "$work/rootfs/tmp/logs" --requests 3000 --shards 2 --seed 1 \
    > /dev/null
  chmod -R a+rX "$work/rootfs/tmp/logs"
  rendezvous=$(free_port)
  train() {
    chroot --userspec="$user" "$work/rootfs" env WORLD_SIZE=2 RANK="$1" MASTER_ADDR=127.0.0.1 \
      MASTER_PORT="$rendezvous" /usr/local/bin/allot-train --logs /tmp/logs --out /tmp/models \
      --epochs 1 --heads 2 --quiet > "$work/train-$1.log" 2>&1
  }
  train 1 &
  rank1=$!
  train 0 || { cat "$work/train-0.log" >&2; die "allot-train rank 0 in the image"; }
  wait "$rank1" || { cat "$work/train-1.log" >&2; die "allot-train rank 1 in the image"; }
  grep -q '^rank 1 of 2: trained' "$work/train-1.log" || die "rank 1 said: $(cat "$work/train-1.log")"
  bundle=$(ls "$work/rootfs/tmp/models")
  [[ -f $work/rootfs/tmp/models/$bundle/manifest.yaml ]] || die "no bundle from allot-train in the image"
  trained="allot-train trained $bundle on 2 ranks"
fi
# What the image's size is made of: its largest files (the shared libraries, see the Dockerfile).
log "largest files: $(find "$work/rootfs/usr" -xdev -type f -printf '%s /usr/%P\n' | sort -rn | sed -n 1,5p |
  numfmt --to=iec | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1 }')"
log "OK: $(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=iec) image;" \
  "the server ran from its root filesystem as $user: health SERVING, $(grep -c '^allot_' "$work/metrics") metric samples;" \
  "$trained"
