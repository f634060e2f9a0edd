# Tools the image tests (test/image-*.test.ts) use: Debian's docker-registry
# (distribution 2.8) which the tests start themselves on 127.0.0.1 with their
# own config (never the packaged one, which listens on every interface),
# skopeo and umoci to check every output, busybox-static for the run image's
# rootfs, and apache2-utils for htpasswd (bcrypt users for registry auth).
# Nothing is started here.
need=()
for pair in docker-registry:docker-registry skopeo:skopeo umoci:umoci busybox:busybox-static htpasswd:apache2-utils; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ "${#need[@]}" -gt 0 ]; then apt_install "${need[@]}"; fi
# The package's init script may have started a registry on :5000 (all interfaces): stop it.
if command -v service >/dev/null 2>&1; then service docker-registry stop >/dev/null 2>&1 || true; fi
unset need pair
