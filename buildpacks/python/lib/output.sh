# shellcheck shell=bash
# One of three identical copies (buildpacks/{nodejs,python,static}/lib/output.sh), on purpose:
# each buildpack stands alone when fetched by URL. Change all three (a test checks).
# Heroku-style build output: headings start with "-----> ", details are
# indented seven spaces, errors start with " !     " and end the build.

header() { echo "-----> $*"; }
info() { echo "       $*"; }
warn() { echo " !     $*"; }

# One clear line on stderr, then exit 1: the build fails.
fail() {
  echo " !     $*" >&2
  exit 1
}

# Indents a command's output as it streams (sed -u: no buffering, so the log
# is live) and drops the blank lines npm and pip print between sections.
indent() { sed -u -e '/^[[:space:]]*$/d' -e 's/^/       /'; }
