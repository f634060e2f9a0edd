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

__dyno_magic='slugkit-launch 2'

# A name bash can export without side effects (and without evaluating a subscript).
__dyno_name_ok() {
  [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || return 1
  case $1 in
    BASH* | EUID | PPID | SHELLOPTS | UID | RANDOM | SRANDOM | SECONDS | LINENO | EPOCHSECONDS | EPOCHREALTIME | HISTCMD | FUNCNAME | GROUPS | IFS | PS4 | SHLVL | PWD | OLDPWD | OPTIND | OPTARG | DIRSTACK | PIPESTATUS | COMP_WORDBREAKS | _ | __dyno_* | __slug_*) return 1 ;;
  esac
}

# Reads the plan on fd 3 into __dyno_plan and indexes it; fails when it is not a plan.
__dyno_read_plan() {
  mapfile -d '' -t __dyno_plan <&3 || return 1
  [ "${__dyno_plan[0]-}" = "$__dyno_magic" ] && __dyno_index
}

# Walks the plan record by record (each record's length is known from its
# tag) and notes where each kind starts, so a value that happens to equal a
# tag (a direct process ["env"]) is never taken for a record.
__dyno_index() {
  local i=2 n=${#__dyno_plan[@]}
  __dyno_at_proc=() __dyno_at_env=() __dyno_at_var=() __dyno_at_profile=() __dyno_at_execd=() __dyno_default=
  while [ "$i" -lt "$n" ]; do
    case ${__dyno_plan[i]} in
      stamp) if [ "${__dyno_plan[i + 2]-}" = 1 ]; then i=$((i + 4)); else i=$((i + 3)); fi ;;
      var) __dyno_at_var+=("$i") i=$((i + 3)) ;;
      default) __dyno_default=${__dyno_plan[i + 1]-} i=$((i + 2)) ;;
      proc)
        __dyno_at_proc+=("$i")
        if [ "${__dyno_plan[i + 3]-}" = direct ]; then
          [[ ${__dyno_plan[i + 5]-} =~ ^[0-9]{1,6}$ ]] || return 1
          i=$((i + 6 + 10#${__dyno_plan[i + 5]}))
        else
          i=$((i + 6))
        fi
        ;;
      env) __dyno_at_env+=("$i") i=$((i + 6)) ;;
      profile) __dyno_at_profile+=("$i") i=$((i + 3)) ;;
      execd) __dyno_at_execd+=("$i") i=$((i + 4)) ;;
      *) return 1 ;;
    esac
  done
  [ "$i" -eq "$n" ]
}

# Whether the plan in __dyno_plan still describes the app in $1: every file
# it was made from holds what it held then, and the plan allows a start from
# bash (with $2 set, one whose exec.d bash runs too: where there is no Node).
__dyno_plan_current() {
  local i=2 name present text
  [ "${__dyno_plan[1]-}" = fast ] || { [ -n "${2-}" ] && [ "${__dyno_plan[1]-}" = execd ]; } || return 1
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
  local i
  for i in "${__dyno_at_proc[@]}"; do
    [ "${__dyno_plan[i + 1]}" = "$1" ] || continue
    __dyno_display=${__dyno_plan[i + 2]} __dyno_kind=${__dyno_plan[i + 3]} __dyno_cwd=${__dyno_plan[i + 4]}
    if [ "$__dyno_kind" = direct ]; then
      __dyno_words=("${__dyno_plan[@]:i + 6:10#${__dyno_plan[i + 5]}}")
    else
      __dyno_words=("${__dyno_plan[i + 5]}")
    fi
    return 0
  done
  return 1
}

# The plan's process types, sorted and comma-separated, as the runner's error line lists them.
__dyno_types() {
  local i j t list=()
  for i in "${__dyno_at_proc[@]}"; do
    t=${__dyno_plan[i + 1]} j=${#list[@]}
    while [ "$j" -gt 0 ] && [[ ${list[j - 1]} > $t ]]; do list[j]=${list[j - 1]} j=$((j - 1)); done
    list[j]=$t
  done
  local IFS=,
  t="${list[*]}"
  printf '%s' "${t//,/, }"
}

# The default process type, as shared/app/processes.ts names it when the plan is made.
__dyno_default_type() {
  __dyno_type=${__dyno_default:-web}
}

# The dyno environment for type $3 of app $1, dyno $2.
__dyno_environment() {
  local i tag op name value delim cur
  local port=${PORT-} dyno=${DYNO-}
  for i in "${__dyno_at_var[@]}"; do
    name=${__dyno_plan[i + 1]}
    __dyno_name_ok "$name" && [ -z "${!name+set}" ] && export -- "$name=${__dyno_plan[i + 2]}"
  done
  export HOME=$1 PORT=${port:-5000} DYNO=${dyno:-$2}
  for i in "${__dyno_at_env[@]}"; do
    tag=${__dyno_plan[i + 1]} op=${__dyno_plan[i + 2]} name=${__dyno_plan[i + 3]} value=${__dyno_plan[i + 4]} delim=${__dyno_plan[i + 5]}
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
  local i
  __dyno_layer_profiles=()
  for i in "${__dyno_at_profile[@]}"; do
    if [ -z "${__dyno_plan[i + 1]}" ] || [ "${__dyno_plan[i + 1]}" = "$2" ]; then
      __dyno_layer_profiles+=("$1/${__dyno_plan[i + 2]}")
    fi
  done
}

# The launch layers' exec.d executables for type $2 (the plan lists them in
# the order they run), each in app dir $1 with the environment so far; the
# `NAME = "value"` lines one writes to fd 3 are exported before the next.
__dyno_execd() {
  local i tag file out code
  for i in "${__dyno_at_execd[@]}"; do
    tag=${__dyno_plan[i + 1]} file=$1/${__dyno_plan[i + 2]}
    { [ -z "$tag" ] || [ "$tag" = "$2" ]; } || continue
    # fd 4 is stdout while fd 3, what the executable writes there, is captured.
    if [ "${__dyno_plan[i + 3]}" = 1 ]; then
      { out=$(cd -- "$1" && CNB_EXEC_ENV=${CNB_EXEC_ENV:-production} exec "$file" 3>&1 1>&4 4>&- </dev/null); } 4>&1
    else
      { out=$(cd -- "$1" && exec "$file" 3>&1 1>&4 4>&- </dev/null); } 4>&1
    fi
    code=$?
    if [ "$code" != 0 ]; then
      echo " !     exec.d $file failed (exit $code)" >&2
      exit 1
    fi
    __dyno_toml_env "$file" "$out" || exit 1
  done
}

# Exports the `NAME = "basic string"` and `NAME = 'literal'` lines of an
# exec.d's output ($2), the TOML a launcher reads from fd 3; anything else
# is refused in one line rather than guessed at.
__dyno_toml_env() {
  local line name raw value c j n
  local re='^[[:space:]]*([A-Za-z0-9_-]+)[[:space:]]*=[[:space:]]*("(([^"\\]|\\.)*)"|'"'([^']*)')"'[[:space:]]*(#.*)?$'
  while IFS= read -r line || [ -n "$line" ]; do
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    if ! [[ $line =~ $re ]]; then
      echo " !     exec.d $1 output: cannot read \"${line:0:60}\": write NAME = \"value\" lines" >&2
      return 1
    fi
    name=${BASH_REMATCH[1]}
    if [[ ${BASH_REMATCH[2]} == \"* ]]; then
      raw=${BASH_REMATCH[3]} value='' j=0 n=${#raw}
      while [ "$j" -lt "$n" ]; do
        c=${raw:j:1}
        if [ "$c" = "\\" ]; then
          j=$((j + 1)) c=${raw:j:1}
          case $c in
            n) c=$'\n' ;; t) c=$'\t' ;; r) c=$'\r' ;; b) c=$'\b' ;; f) c=$'\f' ;; '"' | "\\") ;;
            *) echo " !     exec.d $1 output: $name: the escape \\$c is not one the launcher reads" >&2; return 1 ;;
          esac
        fi
        value+=$c j=$((j + 1))
      done
    else
      value=${BASH_REMATCH[5]}
    fi
    __dyno_name_ok "$name" || { echo " !     exec.d $1 output: $name is not a variable name the launcher can set" >&2; return 1; }
    export -- "$name=$value"
  done <<<"$2"
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
  local ready=${SLUGKIT_ENV_READY-}
  # The platform's own variables never reach the app, as the lifecycle's launcher removes them.
  unset SLUGKIT_ENV_READY CNB_APP_DIR CNB_LAYERS_DIR CNB_PROCESS_TYPE CNB_PLATFORM_API CNB_DEPRECATION_MODE
  if [ "$ready" != 1 ]; then
    __dyno_environment "$app" "$dyno" "$type"
    __dyno_execd "$app" "$type"
  fi
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
unset __dyno_plan __dyno_words __dyno_layer_profiles __dyno_cwd __dyno_kind __dyno_display __dyno_magic __dyno_at_proc __dyno_at_env __dyno_at_var __dyno_at_profile __dyno_at_execd __dyno_default
unset -f __dyno_name_ok __dyno_read_plan __dyno_index __dyno_plan_current __dyno_find __dyno_types __dyno_default_type __dyno_environment __dyno_execd __dyno_toml_env __dyno_profiles __dyno_abs __dyno_main
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
