#!/usr/bin/env bash
# RUN bench (issue 12): RUN lines on the stand-in Runtime base, liftoff and, side by side,
# buildah, in the same run.
#
# Usage: benches/run.sh [--no-buildah] [--runs N] [--cold-runs N] [--only apt|venv|exec]
#
# Measures:
#   1. a recognised RUN (`apt-get update && apt-get install -y --no-install-recommends git
#      && rm -rf /var/lib/apt/lists/*`): liftoff carries it out natively; cold (empty cache, no
#      lock: indexes, resolution, .debs, layer) and unchanged (warm cache, current lock);
#   2. the same project built by `buildah bud --isolation chroot --storage-driver vfs
#      --layers` (apt-get in a container), cold (storage holding only the base) and unchanged;
#   3. a recognised dbt-venv RUN (Astronomer's documented form: `python3 -m venv dbt_venv &&
#      source dbt_venv/bin/activate && pip install --no-cache-dir dbt-postgres==1.8.2 dbt-core~=1.8.0
#      && deactivate` (dbt-core pinned to 1.8: pip's backtracking otherwise builds dbt-core 2's
#      sdist, which downloads from GitHub, unreachable here), with `python3.11-venv` in packages.txt, which the stand-in's Debian Python
#      needs for venv), whole builds cold and unchanged, liftoff and buildah;
#   4. an executed RUN (`RUN touch /tmp/marker-N`: not a recognised form): the first one on an
#      empty cache unpacks the image so far into the cache's trees (the materialisation), a
#      later one with another N finds the tree there; the time of each, and the materialisation
#      step from the timestamped trace.
# The base comes from target/bench-base/ (benches/make-runtime-base.sh; needs root). Leaves
# raw hyperfine JSON and traces in target/bench-run/.
set -euo pipefail

runs=10 cold_runs=3 with_buildah=1 only=
while (($#)); do
  case $1 in
    --only) only=${2:?--only apt|venv|exec}; shift 2 ;;
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --cold-runs) cold_runs=${2:?--cold-runs N}; shift 2 ;;
    --no-buildah) with_buildah=0; shift ;;
    *) echo "usage: $0 [--no-buildah] [--runs N] [--cold-runs N] [--only apt|venv|exec]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
base_dir=$root/target/bench-base
results=$root/target/bench-run
work=$(mktemp -d /tmp/liftoff-bench-run.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"

install_missing hyperfine:hyperfine jq:jq
((with_buildah)) && install_missing buildah:buildah
build_liftoff

if [[ ! -f $base_dir/oci/index.json || ! -f $base_dir/runtime-standin.docker.tar ]]; then
  say "building the stand-in base into $base_dir (minutes; needs root and the network)"
  "$(standin_script)" "$base_dir"
fi

want() { [[ -z $only || $only == "$1" ]]; }
rm -rf "$results"
mkdir -p "$results"
{
  date -u; echo "nproc $(nproc)"; lscpu | grep -E "^Model name"; free -h | sed -n 2p
  "$liftoff" --version; hyperfine --version; ((with_buildah)) && buildah --version
  echo "start: $(uptime)"
} >"$results/machine.txt"

APT_RUN='apt-get update \&\& apt-get install -y --no-install-recommends git \&\& rm -rf /var/lib/apt/lists/*'
make_project() { # DIR RUN-LINE [USER]
  cp -a "$root/testdata/example" "$1"
  printf '[mirrors]\n"quay.io/astronomer/astro-runtime" = "oci:%s"\n' "$base_dir/oci" >"$1/.astro/liftoff.toml"
  printf 'FROM quay.io/astronomer/astro-runtime:12.6.0\nUSER %s\nRUN %s\nUSER astro\n' "${3:-root}" "$2" \
    | sed 's/\\&/\&/g' >"$1/Dockerfile"
}

export LIFTOFF_CACHE_DIR=$work/liftoff-cache
if want apt; then
proj=$work/apt out=$work/out
make_project "$proj" "$APT_RUN"
lo_cmd="$liftoff build $proj --output oci:$out:bench --quiet"
lo_reset="rm -rf $LIFTOFF_CACHE_DIR $proj/.astro/run-packages.lock $out"

say "liftoff: recognised apt-get RUN, cold ($cold_runs runs)"
hf liftoff-apt-cold "$cold_runs" --prepare "$lo_reset" "$lo_cmd"
eval "$lo_reset"
stamp "$results/trace-apt-cold.txt" "$liftoff" build "$proj" --output "oci:$out:bench" --json
grep -q '"path": *"native"' "$results/trace-apt-cold.txt" \
  || { say "the RUN was not carried out natively; see $results/trace-apt-cold.txt"; exit 1; }
say "liftoff: recognised apt-get RUN, unchanged ($runs runs)"
hf liftoff-apt-warm "$runs" --warmup 1 "$lo_cmd"

if ((with_buildah)); then
  bproj=$work/apt-buildah
  make_project "$bproj" "$APT_RUN"
  broot=$work/buildah-root brun=$work/buildah-run
  B="buildah --root $broot --runroot $brun --storage-driver vfs"
  b_log=$results/buildah-stderr.log
  b_load="rm -rf $broot $brun && $B pull --quiet docker-archive:$base_dir/runtime-standin.docker.tar >/dev/null 2>>$b_log"
  b_cmd="$B bud --quiet --isolation chroot --layers --pull=never -t localhost/bench/run:latest $bproj >/dev/null 2>>$b_log"
  export BUILDAH_ISOLATION=chroot
  say "buildah: the same RUN, cold ($cold_runs runs; the base loaded before each, not timed)"
  hf buildah-apt-cold "$cold_runs" --prepare "$b_load" "$b_cmd"
  say "buildah: unchanged ($runs runs)"
  hf buildah-apt-warm "$runs" --warmup 1 "$b_cmd"
  rm -rf "$broot" "$brun"
fi
fi

VENV_RUN='python3 -m venv dbt_venv \&\& source dbt_venv/bin/activate \&\& pip install --no-cache-dir dbt-postgres==1.8.2 dbt-core~=1.8.0 \&\& deactivate'
make_venv_project() { # DIR
  make_project "$1" "$VENV_RUN" astro
  sed -i '1a SHELL ["/bin/bash", "-o", "pipefail", "-e", "-u", "-x", "-c"]' "$1/Dockerfile"
  echo python3.11-venv >"$1/packages.txt"
}
if want venv; then
  proj=$work/venv out=$work/venv-out
  make_venv_project "$proj"
  lo_cmd="$liftoff build $proj --output oci:$out:bench --quiet"
  lo_reset="rm -rf $LIFTOFF_CACHE_DIR $proj/.astro/packages.lock $proj/.astro/run-pylocks $out"
  say "liftoff: recognised dbt-venv RUN, cold ($cold_runs runs)"
  hf liftoff-venv-cold "$cold_runs" --prepare "$lo_reset" "$lo_cmd"
  eval "$lo_reset"
  stamp "$results/trace-venv-cold.txt" "$liftoff" build "$proj" --output "oci:$out:bench" --json
  grep -q '"path": *"native"' "$results/trace-venv-cold.txt" \
    || { say "the venv RUN was not carried out natively; see $results/trace-venv-cold.txt"; exit 1; }
  say "liftoff: recognised dbt-venv RUN, unchanged ($runs runs)"
  hf liftoff-venv-warm "$runs" --warmup 1 "$lo_cmd"
  if ((with_buildah)); then
    bproj=$work/venv-buildah
    make_venv_project "$bproj"
    # pip in a venv trusts only its own CA list: it gets the host's (which holds the CA of a
    # proxy, where HTTPS goes through one) through a mount; liftoff uses the system trust store.
    sed -i '1a ENV PIP_CERT=/etc/ssl/certs/host-ca.pem' "$bproj/Dockerfile"
    broot=$work/buildah-root brun=$work/buildah-run
    B="buildah --root $broot --runroot $brun --storage-driver vfs"
    b_log=$results/buildah-stderr.log
    b_load="rm -rf $broot $brun && $B pull --quiet docker-archive:$base_dir/runtime-standin.docker.tar >/dev/null 2>>$b_log"
    b_cmd="$B bud --quiet --format docker --isolation chroot --layers --pull=never -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/host-ca.pem:ro -t localhost/bench/venv:latest $bproj >/dev/null 2>>$b_log"
    export BUILDAH_ISOLATION=chroot
    say "buildah: the same dbt-venv project, cold ($cold_runs runs; the base loaded before each, not timed)"
    hf buildah-venv-cold "$cold_runs" --prepare "$b_load" "$b_cmd"
    say "buildah: unchanged ($runs runs)"
    hf buildah-venv-warm "$runs" --warmup 1 "$b_cmd"
    rm -rf "$broot" "$brun"
  fi
fi

# Executed RUNs: the first materialises the image so far, later ones find its tree.
eproj=$work/exec
n=0
exec_cmd() { # builds with RUN touch /tmp/marker-N (a new N each time: never a cached layer)
  n=$((n + 1))
  rm -rf "$eproj"
  make_project "$eproj" "touch /tmp/marker-$n"
  "$liftoff" build "$eproj" --output "oci:$work/exec-out:bench" --quiet
}
export -f make_project exec_cmd 2>/dev/null || true
e_reset="rm -rf $LIFTOFF_CACHE_DIR"
if want exec; then
say "liftoff: executed RUN, first materialisation ($cold_runs runs)"
for i in $(seq "$cold_runs"); do
  eval "$e_reset"
  n=$((n + 1)); rm -rf "$eproj"; make_project "$eproj" "touch /tmp/marker-cold-$i"
  stamp "$results/trace-exec-cold-$i.txt" "$liftoff" build "$eproj" --output "oci:$work/exec-out:bench"
done
say "liftoff: executed RUN, tree already made ($cold_runs runs)"
for i in $(seq "$cold_runs"); do
  rm -rf "$eproj"; make_project "$eproj" "touch /tmp/marker-warm-$i"
  stamp "$results/trace-exec-warm-$i.txt" "$liftoff" build "$eproj" --output "oci:$work/exec-out:bench"
done
fi

step_time() { # FILE: seconds from the Unpacking line to the Running line
  awk '/Unpacking the image/ {a=$1} /Running / {if (a != "") {printf "%.2f", $1 - a; exit}}' "$1"
}
total() { tail -1 "$1" | awk '{print $1}'; }
{
  echo "| case | liftoff median (s) | buildah median (s) | ratio |"
  echo "|---|---|---|---|"
  for k in apt venv; do
    for c in cold warm; do
      l=$(median liftoff-$k-$c) b=$(median buildah-$k-$c)
      [[ -z $l && -z $b ]] && continue
      r=$([[ -n $l && -n $b ]] && awk -v l="$l" -v b="$b" 'BEGIN {printf "%.1fx", b / l}' || echo -)
      echo "| recognised $k RUN, $c | $(fmt "$l") | $(fmt "$b") | $r |"
    done
  done
  echo
  echo "| executed RUN | build total (s) | materialisation (s) |"
  echo "|---|---|---|"
  for f in "$results"/trace-exec-*.txt; do
    [[ -f $f ]] || continue
    echo "| $(basename "$f" .txt) | $(total "$f") | $(step_time "$f") |"
  done
} | tee "$results/summary.md"
echo "end: $(uptime)" >>"$results/machine.txt"
