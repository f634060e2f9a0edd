# Tools every test run needs: bash buildpacks, git for source archives,
# util-linux for PID-namespace tests and flock, bubblewrap for the build
# sandboxes (slugbuilder's and the git-push hook's); openssl makes the
# certificate of test/proxy.test.ts's TLS server; libdeflate-tools is
# slugbuilder's faster gzip (SLUGKIT_GZIP), tested beside Node's zlib.
apt_install bash git ca-certificates util-linux procps bubblewrap openssl libdeflate-tools
