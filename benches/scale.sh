#!/usr/bin/env bash
# Scale bench (issue 19): build time and peak memory against the number of project files.
# Projects of N small DAG files in 100 folders (dags/f00 ... dags/f99), empty packages.txt and
# requirements.txt, built with `liftoff build DIR --output oci:...` on the repository's offline
# synthetic Runtime base (testdata/bases/runtime-12):
#   cold       empty cache, no output layout
#   nochange   the same build again (warm cache, same output layout)
#   onefile    one DAG file changed (a line appended) before each run
# plus the peak RSS of one run of each (GNU time). At 20,000 files, when the stand-in Runtime
# base exists (target/bench-base, or the folder LIFTOFF_BENCH_BASE_DIR names; made by
# benches/make-runtime-base.sh), the same project on it with liftoff and buildah side by side
# (buildah: `bud --layers` with the base's ONBUILD triggers, nochange and onefile).
#
# Usage: benches/scale.sh [--sizes "2000 20000 100000"] [--runs N] [--cold-runs N]
#                         [--buildah-runs N] [--no-buildah] [--bin LIFTOFF]
#   --bin LIFTOFF  measure this binary (e.g. a build of an older commit) instead of building
# Leaves hyperfine JSON, GNU time reports and summary.md in target/bench-scale/.
set -euo pipefail

sizes="2000 20000 100000" runs=10 cold_runs=3 buildah_runs=3 with_buildah=1 bin=
while (($#)); do
  case $1 in
    --sizes) sizes=${2:?--sizes LIST}; shift 2 ;;
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --cold-runs) cold_runs=${2:?--cold-runs N}; shift 2 ;;
    --buildah-runs) buildah_runs=${2:?--buildah-runs N}; shift 2 ;;
    --no-buildah) with_buildah=0; shift ;;
    --bin) bin=${2:?--bin LIFTOFF}; shift 2 ;;
    *) echo "usage: $0 [--sizes LIST] [--runs N] [--cold-runs N] [--buildah-runs N] [--no-buildah] [--bin LIFTOFF]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/benches
results=$root/target/bench-scale
standin=${LIFTOFF_BENCH_BASE_DIR:-$root/target/bench-base}
work=$(mktemp -d /tmp/liftoff-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT

# shellcheck source=benches/lib.sh
. "$here/lib.sh"

install_missing hyperfine:hyperfine jq:jq /usr/bin/time:time
if [[ -n $bin ]]; then liftoff=$bin; else build_liftoff; fi

rm -rf "$results"
mkdir -p "$results"
{
  date -u; echo "nproc $(nproc)"; lscpu | grep -E "^Model name"; free -h | sed -n 2p
  df -T "$work" | tail -1 | awk '{print "work file system: " $2}'
  "$liftoff" --version; echo "start: $(uptime)"
} >"$results/machine.txt"

# make_project DIR N BASE_LAYOUT: N DAG files of about 300 bytes, spread over 100 folders.
make_project() {
  local dir=$1 n=$2 layout=$3
  mkdir -p "$dir/.astro"
  printf 'FROM quay.io/astronomer/astro-runtime:12.6.0\n' >"$dir/Dockerfile"
  : >"$dir/packages.txt"
  : >"$dir/requirements.txt"
  printf '.git\n.env\nairflow_settings.yaml\nlogs/\n*.pyc\n__pycache__\n' >"$dir/.dockerignore"
  printf '[mirrors]\n"quay.io/astronomer/astro-runtime" = "oci:%s"\n' "$layout" >"$dir/.astro/liftoff.toml"
  (cd "$dir" && for f in $(seq -w 0 99); do mkdir -p "dags/f$f"; done)
  (cd "$dir" && awk -v n="$n" 'BEGIN {
    for (i = 0; i < n; i++) {
      f = sprintf("dags/f%02d/dag_%06d.py", i % 100, i)
      printf "\"\"\"DAG %d.\"\"\"\nfrom datetime import datetime\n\nfrom airflow import DAG\n\n", i > f
      printf "with DAG(dag_id=\"scale_%06d\", start_date=datetime(2024, 1, 1), schedule=None):\n    pass\n", i > f
      close(f)
    }
  }')
}

# rss LABEL DIR OUT: peak RSS (MB) of one build, GNU time's report kept.
rss() {
  local label=$1 dir=$2 out=$3
  /usr/bin/time -v -o "$results/$label.time" "$liftoff" build "$dir" --quiet --output "oci:$out:bench" \
    >"$results/$label.log" 2>&1 || { cat "$results/$label.log" >&2; return 1; }
  awk -F': ' '/Maximum resident/ {printf "%.0f\n", $2 / 1024}' "$results/$label.time"
}

# liftoff_runs TAG DIR: the three scenarios timed, then one GNU time run of each.
liftoff_runs() {
  local tag=$1 dir=$2 out=$work/out-$1 edit
  export LIFTOFF_CACHE_DIR=$work/cache-$1
  edit="printf '# edit %s\n' \"\$(date +%s%N)\" >>$dir/dags/f07/dag_000007.py"
  local cmd="$liftoff build $dir --quiet --output oci:$out:bench"
  say "$tag: cold ($cold_runs runs)"
  hf "$tag-cold" "$cold_runs" --prepare "rm -rf $LIFTOFF_CACHE_DIR $out" "$cmd"
  say "$tag: no change ($runs runs)"
  hf "$tag-nochange" "$runs" --warmup 1 "$cmd"
  say "$tag: one file changed ($runs runs)"
  hf "$tag-onefile" "$runs" --warmup 1 --prepare "$edit" "$cmd"
  rm -rf "$LIFTOFF_CACHE_DIR" "$out"
  echo "$(rss "$tag-cold" "$dir" "$out") $(rss "$tag-nochange" "$dir" "$out")" \
    "$(eval "$edit"; rss "$tag-onefile" "$dir" "$out")" >"$results/$tag.rss"
  rm -rf "$LIFTOFF_CACHE_DIR" "$out"
}

for n in $sizes; do
  dir=$work/p$n
  say "project of $n files"
  make_project "$dir" "$n" "$root/testdata/bases/runtime-12"
  liftoff_runs "liftoff-$n" "$dir"
  rm -rf "$dir"
done

# Side by side with buildah at 20,000 files on the stand-in base.
have_standin=0
[[ -f $standin/oci/index.json && -f $standin/runtime-standin.docker.tar ]] && have_standin=1
if ((with_buildah)) && ((have_standin == 0)); then
  say "no stand-in base in $standin (benches/make-runtime-base.sh makes it): buildah skipped"
fi
if ((with_buildah && have_standin)); then
  install_missing buildah:buildah
  dir=$work/p20000-standin
  make_project "$dir" 20000 "$standin/oci"
  liftoff_runs standin-liftoff "$dir"
  broot=$work/buildah-root
  B="buildah --root $broot --runroot $work/buildah-run --storage-driver vfs"
  b_log=$results/buildah-stderr.log
  say "buildah: loading the stand-in base (not timed)"
  id=$($B pull --quiet "docker-archive:$standin/runtime-standin.docker.tar" 2>>"$b_log")
  $B tag "$id" quay.io/astronomer/astro-runtime:12.6.0 2>>"$b_log"
  b_cmd="$B bud --quiet --pull=never --isolation chroot --layers -t localhost/bench/scale:latest $dir >/dev/null 2>>$b_log"
  edit="printf '# edit %s\n' \"\$(date +%s%N)\" >>$dir/dags/f07/dag_000007.py"
  say "buildah: first build (not timed)"
  if eval "$b_cmd"; then
    say "buildah: no change ($buildah_runs runs)"
    hf standin-buildah-nochange "$buildah_runs" --warmup 1 "$b_cmd"
    say "buildah: one file changed ($buildah_runs runs)"
    hf standin-buildah-onefile "$buildah_runs" --prepare "$edit" "$b_cmd"
  else
    say "buildah failed; the end of $b_log:"; tail -20 "$b_log" >&2
  fi
  $B rm --all >/dev/null 2>&1 || true
  rm -rf "$broot" "$work/buildah-run" "$dir"
fi

{
  echo "| files | cold (s) | no change (s) | one file changed (s) | peak RSS cold / no change / one changed (MB) |"
  echo "|---|---|---|---|---|"
  for n in $sizes; do
    t=liftoff-$n
    read -r a b c <"$results/$t.rss"
    echo "| $n | $(fmt "$(median "$t-cold")") | $(fmt "$(median "$t-nochange")") | $(fmt "$(median "$t-onefile")") | $a / $b / $c |"
  done
  if [[ -f $results/standin-liftoff.rss ]]; then
    echo
    echo "20,000 files on the stand-in base, same run:"
    echo
    echo "| scenario | liftoff (s) | buildah (s) | buildah / liftoff |"
    echo "|---|---|---|---|"
    for s in nochange onefile; do
      l=$(median "standin-liftoff-$s") b=$(median "standin-buildah-$s")
      ratio=-
      [[ -n $l && -n $b ]] && ratio=$(awk -v l="$l" -v b="$b" 'BEGIN {printf "%.1fx", b / l}')
      echo "| $s | $(fmt "$l") | $(fmt "$b") | $ratio |"
    done
  fi
  echo
  echo "medians of $runs warm / $cold_runs cold liftoff runs, $buildah_runs buildah runs; raw data in $results"
} | tee "$results/summary.md"
echo "end: $(uptime)" >>"$results/machine.txt"
