# The dyno launch: the one place that turns an app dir and its launch plan
# (.slugkit-launch, written by shared/app/launch-plan.ts) into a running
# process. bin/slugrunner sources this file for its plan functions and runs it
# for the fast start; the Node runner runs it after a slug intake. Run as
#
#   bash dyno.bash APP_DIR DYNO TYPE plan              the plan's process TYPE
#   bash dyno.bash APP_DIR DYNO TYPE shell CWD LINE    LINE through bash -c
#   bash dyno.bash APP_DIR DYNO TYPE direct CWD ARG... ARG... exec'd as it is
#
# with the plan on fd 3 (TYPE empty for a one-off). With SLUGKIT_ENV_READY=1
# the environment is taken as it is (the Node runner computed it, e.g. after
# exec.d); otherwise the dyno environment is made here: config vars where
# unset, HOME, PORT, DYNO, then the launch layers' variables.
#
# The plan is data only: NUL-terminated fields read with mapfile, never
# sourced. Names are checked again before use, so a crafted plan cannot make
# bash evaluate anything; only the app's commands and profile scripts run.

__dyno_magic='slugkit-launch 1'

# A name bash can export without side effects (and without evaluating a subscript).
__dyno_name_ok() {
  [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || return 1
  case $1 in
    BASH* | EUID | PPID | SHELLOPTS | UID | RANDOM | SRANDOM | SECONDS | LINENO | EPOCHSECONDS | EPOCHREALTIME | HISTCMD | FUNCNAME | GROUPS | IFS | PS4 | SHLVL | PWD | OLDPWD | OPTIND | OPTARG | DIRSTACK | PIPESTATUS | COMP_WORDBREAKS | _ | __dyno_* | __slug_*) return 1 ;;
  esac
}

# Reads the plan on fd 3 into __dyno_plan; fails when it is not a plan.
__dyno_read_plan() {
  mapfile -d '' -t __dyno_plan <&3 || return 1
  [ "${__dyno_plan[0]-}" = "$__dyno_magic" ]
}

# Whether the plan in __dyno_plan still describes the app in $1: every file
# it was made from holds what it held then, and the plan allows a fast start.
__dyno_plan_current() {
  local i=2 name present text
  [ "${__dyno_plan[1]-}" = fast ] || return 1
  while [ "${__dyno_plan[i]-}" = stamp ]; do
    name=${__dyno_plan[i + 1]} present=${__dyno_plan[i + 2]}
    case $name in .release | Procfile | .layers/config/metadata.toml) ;; *) return 1 ;; esac
    if [ "$present" = 1 ]; then
      # A stamped file that is a link is left to the Node runner, which refuses one leading out of the app.
      [ -f "$1/$name" ] && [ ! -L "$1/$name" ] || return 1
      text=
      IFS= read -r -d '' text <"$1/$name"
      [ "$text" = "${__dyno_plan[i + 3]}" ] || return 1
      i=$((i + 4))
    else
      [ "$present" = 0 ] && [ ! -e "$1/$name" ] || return 1
      i=$((i + 3))
    fi
  done
}

# Finds process TYPE: sets __dyno_display, __dyno_kind, __dyno_cwd and
# __dyno_words (the command line, or the argv of a direct process).
__dyno_find() {
  local i=0 n=${#__dyno_plan[@]}
  while [ "$i" -lt "$n" ]; do
    if [ "${__dyno_plan[i]}" = proc ] && [ "${__dyno_plan[i + 1]}" = "$1" ]; then
      __dyno_display=${__dyno_plan[i + 2]} __dyno_kind=${__dyno_plan[i + 3]} __dyno_cwd=${__dyno_plan[i + 4]}
      if [ "$__dyno_kind" = direct ]; then
        [[ ${__dyno_plan[i + 5]} =~ ^[0-9]{1,6}$ ]] || return 1
        __dyno_words=("${__dyno_plan[@]:i + 6:${__dyno_plan[i + 5]}}")
      else
        __dyno_words=("${__dyno_plan[i + 5]}")
      fi
      return 0
    fi
    i=$((i + 1))
  done
  return 1
}

# The default process type: the CNB process marked default, else web.
__dyno_default_type() {
  local i=0 n=${#__dyno_plan[@]}
  while [ "$i" -lt "$n" ]; do
    if [ "${__dyno_plan[i]}" = default ]; then
      __dyno_type=${__dyno_plan[i + 1]}
      return 0
    fi
    i=$((i + 1))
  done
  __dyno_type=web
}

# The dyno environment for type $3 of app $1, dyno $2.
__dyno_environment() {
  local i=0 n=${#__dyno_plan[@]} tag op name value delim cur
  local port=${PORT-} dyno=${DYNO-}
  while [ "$i" -lt "$n" ]; do
    case ${__dyno_plan[i]} in
      var)
        name=${__dyno_plan[i + 1]}
        __dyno_name_ok "$name" && [ -z "${!name+set}" ] && export -- "$name=${__dyno_plan[i + 2]}"
        i=$((i + 3))
        ;;
      *) i=$((i + 1)) ;;
    esac
  done
  export HOME=$1 PORT=${port:-5000} DYNO=${dyno:-$2}
  i=0
  while [ "$i" -lt "$n" ]; do
    if [ "${__dyno_plan[i]}" != env ]; then
      i=$((i + 1))
      continue
    fi
    tag=${__dyno_plan[i + 1]} op=${__dyno_plan[i + 2]} name=${__dyno_plan[i + 3]} value=${__dyno_plan[i + 4]} delim=${__dyno_plan[i + 5]}
    i=$((i + 6))
    # shellcheck disable=SC2015  # skip the entry unless its tag matches and its name is one bash can set
    { [ -z "$tag" ] || [ "$tag" = "$3" ]; } && __dyno_name_ok "$name" || continue
    cur=${!name-}
    case $op in
      path) export -- "$name=$1/$value${cur:+:$cur}" ;;
      override) export -- "$name=$value" ;;
      default) [ -n "$cur" ] || export -- "$name=$value" ;;
      prepend) export -- "$name=$value${cur:+$delim$cur}" ;;
      append) export -- "$name=${cur:+$cur$delim}$value" ;;
    esac
  done
}

# The launch layers' profile scripts for type $2 (all-type ones first), as paths under app $1.
__dyno_profiles() {
  local i=0 n=${#__dyno_plan[@]}
  __dyno_layer_profiles=()
  while [ "$i" -lt "$n" ]; do
    if [ "${__dyno_plan[i]}" = profile ]; then
      if [ -z "${__dyno_plan[i + 1]}" ] || [ "${__dyno_plan[i + 1]}" = "$2" ]; then
        __dyno_layer_profiles+=("$1/${__dyno_plan[i + 2]}")
      fi
      i=$((i + 3))
    else
      i=$((i + 1))
    fi
  done
}

# A plan's working dir: relative ones are under the app dir.
__dyno_abs() {
  case $2 in
    '') __dyno_cwd=$1 ;;
    /*) __dyno_cwd=$2 ;;
    *) __dyno_cwd=$1/$2 ;;
  esac
}

__dyno_main() {
  local app=$1 dyno=$2 type=$3 mode=$4
  shift 4
  __dyno_read_plan || {
    echo ' !     the launch plan is not readable: rebuild the app' >&2
    exit 1
  }
  exec 3<&-
  if [ "$mode" = plan ]; then
    __dyno_find "$type" || exit 1
    __dyno_abs "$app" "$__dyno_cwd"
  else
    __dyno_abs "$app" "$1"
    shift
    __dyno_kind=$mode __dyno_words=("$@")
  fi
  [ "${SLUGKIT_ENV_READY-}" = 1 ] || __dyno_environment "$app" "$dyno" "$type"
  unset SLUGKIT_ENV_READY
  cd -- "$app" || exit 1
  if [ "$__dyno_kind" = direct ]; then
    cd -- "$__dyno_cwd" || exit 1
    local file=${__dyno_words[0]}
    # A shell's codes with the runner's message: 127 not there, 126 not runnable.
    if [[ $file != */* ]] && ! type -P -- "$file" >/dev/null; then
      echo " !     cannot run $file: not found on PATH; check the buildpack's launch.toml and that --app-dir is the dir the app was built in" >&2
      exit 127
    fi
    if [[ $file == */* ]] && [ ! -e "$file" ]; then
      echo " !     cannot run $file: not found; check the buildpack's launch.toml and that --app-dir is the dir the app was built in" >&2
      exit 127
    fi
    exec -- "${__dyno_words[@]}"
  fi
  __dyno_profiles "$app" "$type"
  __slug_wd=$__dyno_cwd __slug_cmd=${__dyno_words[0]} __slug_layer_profiles=("${__dyno_layer_profiles[@]}")
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then return 0; fi
__dyno_main "$@"
unset __dyno_plan __dyno_words __dyno_layer_profiles __dyno_cwd __dyno_kind __dyno_display __dyno_magic
unset -f __dyno_name_ok __dyno_read_plan __dyno_plan_current __dyno_find __dyno_default_type __dyno_environment __dyno_profiles __dyno_abs __dyno_main
# As on Heroku: layer profiles, .profile.d/*.sh in byte order, .profile, all
# sourced at the top level in the app dir, then the command in its working
# dir. LC_ALL=C pins the glob order to bytes, then the app's locale is back.
# shellcheck source=/dev/null  # the app's and its buildpacks' profile scripts
for __slug_f in "${__slug_layer_profiles[@]}"; do . "$__slug_f"; done
__slug_lc=${LC_ALL-__unset__}
export LC_ALL=C
__slug_profiles=(.profile.d/*.sh)
if [ "$__slug_lc" = __unset__ ]; then unset LC_ALL; else export LC_ALL=$__slug_lc; fi
unset __slug_lc
# shellcheck source=/dev/null
for __slug_f in "${__slug_profiles[@]}"; do [ -f "$__slug_f" ] && . "$__slug_f"; done
unset __slug_f __slug_profiles __slug_layer_profiles
# shellcheck source=/dev/null
if [ -f .profile ]; then . ./.profile; fi
cd -- "$__slug_wd" || exit 1
unset __slug_wd
exec bash -c "$__slug_cmd"
