# shellcheck shell=bash
# A virtualenv records the absolute path it was created at. The slug is
# built in a temporary directory and runs from /app (or any --app-dir), so
# these helpers remove every use of the build path that matters at runtime.
#
# What already works when moved: Python finds pyvenv.cfg (and so
# site-packages) next to the path it was started by, not the one it was
# created at, and takes its standard library from pyvenv.cfg's "home".

# The venv is made with --copies: a slug must not hold absolute symlinks
# (bin/python3 -> /usr/bin/python3.11), which safe unpackers strip or refuse.
# One copy is enough; the other names become relative links to it, each
# pointing at the file itself (no link-to-link chains either).
link_interpreters() {
  local venv=$1 name
  for name in "$venv"/bin/python3 "$venv"/bin/python3.*; do
    [ -e "$name" ] || continue
    rm -f "$name"
    ln -s python "$name"
  done
}

# The shebang pip writes ("#!/tmp/build/.heroku/python/bin/python") becomes a
# shell/Python polyglot, the form pip's own script maker (distlib) uses for
# long paths: sh runs the first line and execs the python next to the
# script; Python reads those lines as a harmless string literal.
relocate_scripts() {
  local venv=$1 script first
  for script in "$venv"/bin/*; do
    if [ ! -f "$script" ] || [ -L "$script" ]; then continue; fi
    IFS= read -r first <"$script" || continue
    [[ $first == "#!$venv/bin/python"* ]] || continue
    {
      cat <<'POLYGLOT'
#!/bin/sh
'''exec' "$(dirname -- "$(realpath -- "$0")")/python" "$0" "$@"
' '''
POLYGLOT
      tail -n +2 "$script"
    } >"$script.relocated"
    chmod --reference="$script" "$script.relocated"
    mv "$script.relocated" "$script"
  done
}

make_venv_relocatable() {
  local venv=$1 build_dir=$2 activate
  link_interpreters "$venv"
  relocate_scripts "$venv"
  "$venv/bin/python" "$(dirname "${BASH_SOURCE[0]}")/update_records.py" "$venv"
  info "console scripts find python next to themselves"

  # activate scripts: the venv is always $HOME/.heroku/python at runtime.
  for activate in "$venv"/bin/activate "$venv"/bin/activate.csh "$venv"/bin/activate.fish; do
    [ -f "$activate" ] || continue
    sed -i "s|$venv|\$HOME/.heroku/python|g" "$activate"
  done

  # pyvenv.cfg's "command" line only documents how the venv was made, with
  # the build path in it; Python does not read it.
  sed -i '/^command = /d' "$venv/pyvenv.cfg"

  # Bytecode: checked-hash .pyc files stay valid whatever the mtimes in the
  # slug, and their recorded source paths name the runtime location.
  # Some packages ship files that do not compile on this Python (examples,
  # code for other versions); like pip, do not fail the build for them.
  if "$venv/bin/python" -m compileall -q -f -j 0 --invalidation-mode checked-hash \
    -s "$build_dir" -p /app "$venv/lib" >/dev/null; then
    info "bytecode compiled (hash-checked, paths under /app)"
  else
    info "bytecode compiled (hash-checked, paths under /app); files with syntax errors were skipped"
  fi
}
