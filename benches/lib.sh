# Shared pieces of the bench scripts; sourced (not run) after they set `root` and `results`.
#   say MSG...                  progress line on stderr
#   install_missing TOOL...     apt-get installs the tools (command:package) that are missing
#   build_liftoff               release build; sets `liftoff` (honours CARGO_TARGET_DIR)
#   standin_script              the script that builds the stand-in Runtime base
#   hf NAME RUNS [hyperfine options...] COMMAND
#                               hyperfine with JSON and text kept in $results (and the load
#                               average noted in $results/machine.txt when that file exists)
#   stamp_lines                 filter: prefixes each line with the seconds since it started
#   stamp OUTFILE COMMAND...    runs COMMAND, its output lines timestamped into OUTFILE, and
#                               appends its exit status; returns that status
#   median/cpu/n NAME           median wall, mean user+sys, number of runs of $results/NAME.json
#   fmt VALUE                   three decimals, or "-" when empty

say() { printf '== %s\n' "$*" >&2; }

install_missing() {
  local need=() tool
  for tool in "$@"; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
  done
  if ((${#need[@]})); then
    say "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

build_liftoff() {
  local target_dir=${CARGO_TARGET_DIR:-$root/target}
  say "building liftoff (release, target dir $target_dir)"
  (cd "$root" && CARGO_TARGET_DIR=$target_dir cargo build --release --quiet --bin liftoff)
  liftoff=$target_dir/release/liftoff
}

standin_script() { echo "$root/benches/make-runtime-base.sh"; }

hf() {
  local name=$1 n=$2; shift 2
  [[ -f $results/machine.txt ]] && echo "$name: $(uptime)" >>"$results/machine.txt"
  hyperfine --style basic --runs "$n" --export-json "$results/$name.json" "$@" >"$results/$name.txt" 2>&1 \
    || { cat "$results/$name.txt" >&2; return 1; }
  grep -E 'Time|Range' "$results/$name.txt" | sed "s/^/   $name: /" >&2
}

stamp_lines() {
  local t0=${EPOCHREALTIME/./} us line
  while IFS= read -r line; do
    us=$((${EPOCHREALTIME/./} - t0))
    printf '%4d.%06d  %s\n' $((us / 1000000)) $((us % 1000000)) "$line"
  done
}

stamp() {
  local file=$1 t0=${EPOCHREALTIME/./} us status
  shift
  set +e
  "$@" 2>&1 | stamp_lines >"$file"
  status=${PIPESTATUS[0]}
  set -e
  us=$((${EPOCHREALTIME/./} - t0))
  printf '%4d.%06d  (exit %d)\n' $((us / 1000000)) $((us % 1000000)) "$status" >>"$file"
  return "$status"
}

median() { [[ -f $results/$1.json ]] && jq -r '.results[0].median' "$results/$1.json" || true; }
# Mean user+system CPU seconds: unlike wall time, barely moved by other load on a shared machine.
cpu() { [[ -f $results/$1.json ]] && jq -r '.results[0].user + .results[0].system' "$results/$1.json" || true; }
n() { [[ -f $results/$1.json ]] && jq -r '.results[0].times | length' "$results/$1.json" || true; }
fmt() { [[ -n ${1:-} ]] && printf '%.3f' "$1" || printf -- '-'; }
