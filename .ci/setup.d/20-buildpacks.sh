# shellcheck shell=bash
# Bundled buildpacks (buildpacks/*): the python buildpack needs python3 with
# venv/ensurepip (Debian splits them into python3-venv) and its tests build
# wheels with python3; every buildpack script must pass shellcheck, checked
# here so a single warning fails CI before the test suite starts.
apt_install shellcheck python3 python3-venv python3-pip

bundled_buildpack_scripts() {
  local file
  for file in buildpacks/*/bin/* buildpacks/*/lib/*.sh; do
    [ -f "$file" ] || continue
    # Only shell scripts: lib/ also holds node helpers (*.cjs).
    case $(head -n 1 "$file") in
      '#!/usr/bin/env bash' | '#!/bin/bash' | '#!/bin/sh' | '#!/usr/bin/env sh' | '# shellcheck shell='*) echo "$file" ;;
    esac
  done
}
mapfile -t bundled_scripts < <(bundled_buildpack_scripts)
# The runner's own bash entry point and launch script are held to the same bar.
bundled_scripts+=(bin/slugrunner bin/dyno.bash)
echo "shellcheck: ${#bundled_scripts[@]} bundled buildpack and runner scripts" >&2
shellcheck -x "${bundled_scripts[@]}"
unset bundled_scripts
