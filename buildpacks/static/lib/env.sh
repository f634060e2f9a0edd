# shellcheck shell=bash
# One of three identical copies (buildpacks/{nodejs,python,static}/lib/env.sh), on purpose:
# each buildpack stands alone when fetched by URL. Change all three (a test checks).
# Config vars arrive in ENV_DIR as one file per variable. Like Heroku's
# buildpacks, export all of them into the build except the few that would
# break the build machine itself (PATH, the loader, the shell's HOME...).
# Names must start with an upper-case letter or "_": the buildpack's own
# lower-case variables (build_dir, ...) cannot be overridden by a config var.

readonly ENV_DENYLIST='^(PATH|HOME|IFS|SHELL|PWD|OLDPWD|ENV|BASH_.*|BASHOPTS|SHELLOPTS|EUID|UID|PPID|GIT_DIR|CPATH|CPPATH|LD_PRELOAD|LD_LIBRARY_PATH|LIBRARY_PATH|LANG|BUILD_DIR|CACHE_DIR|ENV_DIR)$'

export_env_dir() {
  local env_dir=$1 file name
  [ -d "$env_dir" ] || return 0
  for file in "$env_dir"/*; do
    [ -f "$file" ] || continue
    name=$(basename "$file")
    [[ $name =~ ^[A-Z_][A-Za-z0-9_]*$ ]] || continue
    [[ $name =~ $ENV_DENYLIST ]] && continue
    export "$name=$(cat "$file")"
  done
}
