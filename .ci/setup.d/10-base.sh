# Tools every test run needs: bash buildpacks, git for source archives,
# util-linux for PID-namespace tests, bubblewrap for the build sandbox.
apt_install bash git ca-certificates util-linux procps bubblewrap
