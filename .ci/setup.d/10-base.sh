# Tools every test run needs: bash buildpacks, git for source archives,
# util-linux for PID-namespace tests.
apt_install bash git ca-certificates util-linux procps
