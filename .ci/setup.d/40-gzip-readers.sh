# Readers the parallel-gzip tests check their output with (test/pgzip.test.ts):
# GNU gzip and tar are in every Debian base; python3 may not be.
command -v gzip >/dev/null 2>&1 || apt_install gzip
command -v tar >/dev/null 2>&1 || apt_install tar
command -v python3 >/dev/null 2>&1 || apt_install python3
