#!/usr/bin/env bash
# Peak memory bench (issue 10): peak RSS and wall time of cold builds whose images are large,
# measured with GNU time (`/usr/bin/time -v`), optionally side by side with another liftoff
# binary (an older build) in the same run.
#
# Usage: benches/memory.sh [--before BIN] [--runs N] [--only NAME]
#   --before BIN  also measure BIN (e.g. a build of an older commit), same projects, same run
#   --runs N      cold builds per scenario and binary (default 1; the median RSS is reported)
#   --only NAME   one scenario: scenario, packages, requirements
#
# Scenarios (each on the stand-in Runtime base, FROM quay.io/astronomer/astro-runtime:12.6.0
# mirrored to the base's OCI layout, `liftoff build DIR --output oci:...`, empty cache, no lock):
#   scenario      the 20 MB scenario project of benches/make-project.sh (400 DAGs, data, models)
#   packages      packages.txt = build-essential libpq-dev (the Debian archive)
#   requirements  requirements.txt = tensorflow==2.16.1 (PyPI; about 1.5 GB of wheels unpacked),
#                 with --allow-conflicts: its protobuf<5 contradicts the base's opentelemetry
# plus, for each, a warm run (same cache, lock kept): what a rebuild holds.
# The base is target/bench-base/oci (built by benches/make-runtime-base.sh when missing,
# about 3 minutes, needs root) or the layout LIFTOFF_BENCH_BASE names.
# Leaves the GNU time reports and a summary in target/bench-memory/.
set -euo pipefail

before= runs=1 only=
while (($#)); do
  case $1 in
    --before) before=${2:?--before BIN}; shift 2 ;;
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --only) only=${2:?--only NAME}; shift 2 ;;
    *) echo "usage: $0 [--before BIN] [--runs N] [--only scenario|packages|requirements]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/benches
results=$root/target/bench-memory
work=$(mktemp -d /tmp/liftoff-mem.XXXXXX)
trap 'rm -rf "$work"' EXIT

# shellcheck source=benches/lib.sh
. "$here/lib.sh"

install_missing /usr/bin/time:time jq:jq
build_liftoff

base=${LIFTOFF_BENCH_BASE:-$root/target/bench-base/oci}
if [[ ! -f $base/index.json ]]; then
  say "building the stand-in base into $root/target/bench-base (about 3 minutes)"
  "$(standin_script)" "$root/target/bench-base"
  base=$root/target/bench-base/oci
fi

rm -rf "$results"
mkdir -p "$results"
{
  date -u; echo "nproc $(nproc)"; lscpu | grep -E "^Model name"; free -h | sed -n 2p; echo "start: $(uptime)"
} >"$results/machine.txt"

# project NAME: a project directory for the scenario, FROM the Runtime name mirrored to $base.
project() {
  local dir=$work/project-$1
  rm -rf "$dir"
  case $1 in
    scenario) "$here/make-project.sh" "$dir" quay.io/astronomer/astro-runtime:12.6.0 ;;
    packages | requirements)
      mkdir -p "$dir/dags" "$dir/.astro"
      printf 'FROM quay.io/astronomer/astro-runtime:12.6.0\n' >"$dir/Dockerfile"
      printf 'print("dag")\n' >"$dir/dags/dag.py"
      : >"$dir/packages.txt"
      : >"$dir/requirements.txt"
      if [[ $1 == packages ]]; then
        printf 'build-essential\nlibpq-dev\n' >"$dir/packages.txt"
      else
        printf 'tensorflow==2.16.1\n' >"$dir/requirements.txt"
      fi
      ;;
  esac
  printf '[mirrors]\n"quay.io/astronomer/astro-runtime" = "oci:%s"\n' "$base" >"$dir/.astro/liftoff.toml"
  echo "$dir"
}

# measure LABEL BIN DIR [ARGS...]: GNU time of one build into $results/LABEL.time; prints "rss_mb wall_s".
measure() {
  local label=$1 bin=$2 dir=$3
  shift 3
  /usr/bin/time -v -o "$results/$label.time" "$bin" build "$dir" --quiet "$@" \
    --output "oci:$work/out-$label:bench" >"$results/$label.log" 2>&1 \
    || { cat "$results/$label.log" >&2; return 1; }
  rm -rf "$work/out-$label"
  awk -F': ' '/Maximum resident/ {rss = $2} /Elapsed \(wall/ {w = $2}
    END {n = split(w, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.0f %.1f\n", rss / 1024, s}' \
    "$results/$label.time"
}

median_of() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

bins=("liftoff:$liftoff")
[[ -n $before ]] && bins+=("before:$before")
scenarios=(scenario packages requirements)
[[ -n $only ]] && scenarios=("$only")

printf '| scenario | binary | cold peak RSS (MB) | cold wall (s) | warm peak RSS (MB) | warm wall (s) |\n|---|---|---|---|---|---|\n' >"$results/summary.md"
for sc in "${scenarios[@]}"; do
  for entry in "${bins[@]}"; do
    name=${entry%%:*} bin=${entry#*:}
    args=()
    [[ $sc == requirements ]] && args=(--allow-conflicts)
    cold_rss=() cold_wall=()
    for i in $(seq 1 "$runs"); do
      dir=$(project "$sc")
      export LIFTOFF_CACHE_DIR=$work/cache-$sc-$name
      rm -rf "$LIFTOFF_CACHE_DIR"
      say "$sc / $name: cold build $i of $runs"
      read -r rss wall < <(measure "$sc-$name-cold-$i" "$bin" "$dir" "${args[@]}")
      cold_rss+=("$rss") cold_wall+=("$wall")
    done
    say "$sc / $name: warm build"
    read -r wrss wwall < <(measure "$sc-$name-warm" "$bin" "$dir" "${args[@]}")
    rm -rf "$LIFTOFF_CACHE_DIR"
    crss=$(printf '%s\n' "${cold_rss[@]}" | median_of)
    cwall=$(printf '%s\n' "${cold_wall[@]}" | median_of)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$sc" "$name" "$crss" "$cwall" "$wrss" "$wwall" >>"$results/summary.md"
  done
done
echo "end: $(uptime)" >>"$results/machine.txt"
cat "$results/machine.txt" "$results/summary.md"
