# Docker for the image tests (test/docker-*.test.ts): Debian's docker.io
# (daemon + a client with BuildKit built in) and debootstrap, which the tests
# use to make their own base images since Docker Hub is unreachable here.
# Sourced by .ci/run (set -euo pipefail, apt_install defined); idempotent.
# debian-archive-keyring: debootstrap only recommends it, and apt_install skips
# recommends; without it the bookworm Release file cannot be verified.
apt_install docker.io debootstrap debian-archive-keyring

if ! docker info >/dev/null 2>&1; then
  # No systemd on these machines: run dockerd directly, in the background, so
  # it outlives this sourced step and serves the tests.
  echo "--- ci: starting dockerd (log: /var/log/slugkit-dockerd.log)" >&2
  nohup dockerd >/var/log/slugkit-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "dockerd did not answer within 60 s; last log lines:" >&2
    tail -n 20 /var/log/slugkit-dockerd.log >&2
    exit 1
  fi
fi
docker version --format 'docker: client {{.Client.Version}}, server {{.Server.Version}}' >&2
