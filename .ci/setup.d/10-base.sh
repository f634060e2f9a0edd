# Tools every test run needs: bash buildpacks, git for source archives,
# util-linux for PID-namespace tests and flock, bubblewrap for the git-push
# hook's build sandbox.
apt_install bash git ca-certificates util-linux procps bubblewrap
