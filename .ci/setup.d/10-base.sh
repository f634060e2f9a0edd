# Tools every test run needs: bash buildpacks, git for source archives,
# util-linux for PID-namespace tests and flock, bubblewrap for the build
# sandboxes (slugbuilder's and the git-push hook's).
apt_install bash git ca-certificates util-linux procps bubblewrap
