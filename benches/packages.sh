#!/usr/bin/env bash
# packages.txt bench (issue 4): the Debian packages layer for `git libpq-dev` on the stand-in
# Runtime base, built by liftoff (no apt, no dpkg) and, side by side, by apt-get inside a
# buildah container build of the same project.
#
# Usage: benches/packages.sh [--no-buildah] [--runs N] [--cold-runs N] [--bud-runs N] [--apt-runs N]
#   --runs N          timed runs of the warm liftoff scenarios (default 10)
#   --cold-runs N     timed runs of the cold liftoff build (default 3)
#   --bud-runs N      timed buildah builds besides the traced one (default 1: minutes each in vfs)
#   --apt-runs N      timed runs of the apt step alone (default 3)
#   --no-buildah      liftoff only
#
# Measures:
#   1. liftoff cold: empty LIFTOFF_CACHE_DIR, no .astro/packages.lock, `liftoff build DIR
#      --output oci:...` (InRelease, indexes, resolution, .deb downloads, unpacking, layer),
#      plus one run with every stderr line timestamped (the step split);
#   1b. liftoff cold packages: the same, but the base's layers were indexed by a build of the
#      twin project with an empty packages.txt first (untimed), as apt-get's container starts
#      from a base already in storage;
#   1c. liftoff locked cold: the lock from 1b kept (committed, as in CI), the cache emptied and
#      the base indexed again: no index is fetched, the .debs are;
#   2. liftoff warm: a current lock and a warm cache, the whole build; the packages step alone
#      is the difference with the same project whose packages.txt is empty (same cache);
#   3. buildah: `buildah bud --isolation chroot --storage-driver vfs --layers` of the same
#      project (the base's ONBUILD RUN install-system-packages runs apt-get), storage holding only
#      the base (loaded from target/bench-base/runtime-standin.docker.tar before each run, not
#      timed; its load time is printed once), and the apt step alone: `buildah run` of
#      install-system-packages in a fresh container of the base (apt-get update + install + clean).
# Both fetch from the Debian archive the base's sources.list names (the real bookworm archive,
# over a shared, noisy network). The base comes from target/bench-base/ (built once by
# benches/make-runtime-base.sh, as benches/scenario.sh does; needs root).
# Leaves raw hyperfine JSON, traces and logs in target/bench-packages/.
set -euo pipefail

runs=10 cold_runs=3 bud_runs=1 apt_runs=3 with_buildah=1
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --cold-runs) cold_runs=${2:?--cold-runs N}; shift 2 ;;
    --bud-runs) bud_runs=${2:?--bud-runs N}; shift 2 ;;
    --apt-runs) apt_runs=${2:?--apt-runs N}; shift 2 ;;
    --no-buildah) with_buildah=0; shift ;;
    *) echo "usage: $0 [--no-buildah] [--runs N] [--cold-runs N] [--bud-runs N] [--apt-runs N]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
base_dir=$root/target/bench-base
results=$root/target/bench-packages
work=$(mktemp -d /tmp/liftoff-bench-pkgs.XXXXXX)
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

rm -rf "$results"
mkdir -p "$results"
{
  date -u; echo "nproc $(nproc)"; lscpu | grep -E "^Model name"; free -h | sed -n 2p
  "$liftoff" --version; hyperfine --version; ((with_buildah)) && buildah --version
  echo "start: $(uptime)"
} >"$results/machine.txt"

# The project: testdata/example, packages.txt = the issue's cold target, the base through a
# mirror to the local OCI layout (as tests/it/live.rs does). A twin with an empty packages.txt
# gives the warm build without the packages step.
make_project() { # DIR PACKAGES
  cp -a "$root/testdata/example" "$1"
  printf '[mirrors]\n"quay.io/astronomer/astro-runtime" = "oci:%s"\n' "$base_dir/oci" >"$1/.astro/liftoff.toml"
  printf '%s' "$2" >"$1/packages.txt"
}
pkgs=$work/pkgs nopkgs=$work/nopkgs
make_project "$pkgs" $'git libpq-dev\n'
make_project "$nopkgs" ''

export LIFTOFF_CACHE_DIR=$work/liftoff-cache
out=$work/out
lo_cmd="$liftoff build $pkgs --output oci:$out:bench --quiet"
lo_nopkgs_cmd="$liftoff build $nopkgs --output oci:$out-nopkgs:bench --quiet"
lo_reset="rm -rf $LIFTOFF_CACHE_DIR $pkgs/.astro/packages.lock $out"

say "liftoff: cold, git libpq-dev ($cold_runs runs)"
hf liftoff-cold "$cold_runs" --prepare "$lo_reset" "$lo_cmd"
say "liftoff: cold packages, base already indexed ($cold_runs runs)"
hf liftoff-cold-pkgs "$cold_runs" --prepare "$lo_reset && $lo_nopkgs_cmd" "$lo_cmd"
eval "$lo_reset"
$lo_nopkgs_cmd
stamp "$results/trace-cold-pkgs.txt" "$liftoff" build "$pkgs" --output "oci:$out:bench"
# The CI case: the lock committed (just written above), an empty cache, the base indexed.
say "liftoff: locked, empty cache, base indexed ($cold_runs runs)"
lo_cache_reset="rm -rf $LIFTOFF_CACHE_DIR $out"
hf liftoff-locked-cold "$cold_runs" --prepare "$lo_cache_reset && $lo_nopkgs_cmd" "$lo_cmd --locked"
eval "$lo_reset"
stamp "$results/trace-cold.txt" "$liftoff" build "$pkgs" --output "oci:$out:bench"
grep -qx 'Package: git' "$pkgs/.astro/packages.lock" \
  || { say "the lock does not hold git; see $pkgs/.astro/packages.lock"; exit 1; }
cp "$pkgs/.astro/packages.lock" "$results/packages.lock"
say "lock: $(grep -c '^Package:' "$results/packages.lock") packages, $(
  awk '/^Size:/ {s += $2} END {printf "%.1f MB", s / 1e6}' "$results/packages.lock") of .debs"

say "liftoff: warm cache, current lock ($runs runs)"
hf liftoff-warm "$runs" --warmup 1 "$lo_cmd"
stamp "$results/trace-warm.txt" "$liftoff" build "$pkgs" --output "oci:$out:bench"
if grep -qE 'Fetch|Resolving +packages|Installing' "$results/trace-warm.txt"; then
  say "WARNING: the warm build did packages work; see $results/trace-warm.txt"
fi
say "liftoff: warm cache, empty packages.txt ($runs runs)"
hf liftoff-warm-nopkgs "$runs" --warmup 1 "$lo_nopkgs_cmd"
stamp "$results/trace-warm-nopkgs.txt" "$liftoff" build "$nopkgs" --output "oci:$out-nopkgs:bench"

if ((with_buildah)); then
  # buildah gets its own copy of the project (no liftoff lock in its build context).
  bproj=$work/pkgs-buildah
  make_project "$bproj" $'git libpq-dev\n'
  broot=$work/buildah-root brun=$work/buildah-run
  B="buildah --root $broot --runroot $brun --storage-driver vfs"
  b_log=$results/buildah-stderr.log
  base_archive=docker-archive:$base_dir/runtime-standin.docker.tar
  base_name=quay.io/astronomer/astro-runtime:12.6.0
  b_load="rm -rf $broot $brun && $B pull --quiet $base_archive >/dev/null 2>>$b_log"
  b_cmd="$B bud --quiet --isolation chroot --layers --pull=never -t localhost/bench/pkgs:latest $bproj >/dev/null 2>>$b_log"
  # The apt step alone: a fresh container of the base, then the timed `buildah run` writes
  # packages.txt and runs install-system-packages (apt-get update + install + clean). buildah
  # 1.28's `from` runs the base's ONBUILD triggers itself, from the current directory: they run
  # here on an empty packages.txt (no apt work) and stop with an error at `COPY --chown=astro:0`
  # (which that `from` does not parse), after the USER root and RUN triggers; so its exit status
  # is ignored and the container's existence is checked instead.
  actx=$work/apt-context
  mkdir -p "$actx"
  : >"$actx/packages.txt"
  cp "$bproj/requirements.txt" "$actx/"
  a_prepare="$B rm --all >/dev/null 2>&1; (cd $actx && $B from --quiet --isolation chroot --pull=never --name aptbench $base_name) >/dev/null 2>&1; $B inspect --type container aptbench >/dev/null"
  pk=$(tr '\r\n' '  ' <"$bproj/packages.txt")
  a_cmd="$B run --isolation chroot --user root aptbench -- sh -c \"echo '$pk' >packages.txt && exec /usr/local/bin/install-system-packages\" >>$results/apt-run.log 2>&1"

  say "buildah: loading the base into empty vfs storage (not part of the timed runs)"
  t0=${EPOCHREALTIME/./}
  eval "$b_load"
  say "   base load: $(((${EPOCHREALTIME/./} - t0) / 1000)) ms" | tee -a "$results/machine.txt"
  say "buildah: apt step alone, buildah run install-system-packages ($apt_runs runs)"
  : >"$results/apt-run.log"
  hf apt-step "$apt_runs" --prepare "$a_prepare" "$a_cmd"
  grep -q 'Setting up git ' "$results/apt-run.log" \
    || { say "apt-get did not set up git; see $results/apt-run.log"; exit 1; }
  $B rm --all >/dev/null 2>&1 || true
  say "buildah: bud of the project, storage holding only the base ($bud_runs runs)"
  hf buildah-bud "$bud_runs" --prepare "$b_load" "$b_cmd"
  $B inspect --type image localhost/bench/pkgs:latest | jq -r '.OCIv1.history[].created_by' >"$results/buildah-history.txt"
  grep -q install-system-packages "$results/buildah-history.txt" \
    || { say "buildah's image history shows no ONBUILD install-system-packages; see $results/buildah-history.txt"; exit 1; }
  say "buildah: one bud with timestamps (the apt step inside it)"
  eval "$b_load"
  stamp "$results/trace-buildah.txt" $B bud --isolation chroot --layers --pull=never -t localhost/bench/pkgs:latest "$bproj"
  grep -q 'Setting up git ' "$results/trace-buildah.txt" \
    || { say "apt-get did not set up git in the buildah build; see $results/trace-buildah.txt"; exit 1; }
fi
echo "end: $(uptime)" >>"$results/machine.txt"

row() { printf '%-46s %10s %10s %5s  %s\n' "$@"; }
{
  lc=$(median liftoff-cold) lw=$(median liftoff-warm) ln=$(median liftoff-warm-nopkgs)
  bb=$(median buildah-bud) ap=$(median apt-step)
  echo
  row measure "wall (s)" "CPU (s)" runs note
  row "liftoff cold (git libpq-dev)" "$(fmt "$lc")" "$(fmt "$(cpu liftoff-cold)")" "$(n liftoff-cold)" "empty cache, no lock"
  row "liftoff cold packages, base indexed" "$(fmt "$(median liftoff-cold-pkgs)")" "$(fmt "$(cpu liftoff-cold-pkgs)")" "$(n liftoff-cold-pkgs)" "no lock, no indexes or .debs"
  row "liftoff locked, empty cache, base indexed" "$(fmt "$(median liftoff-locked-cold)")" "$(fmt "$(cpu liftoff-locked-cold)")" "$(n liftoff-locked-cold)" "lock committed (CI): no index"
  row "liftoff warm, current lock" "$(fmt "$lw")" "$(fmt "$(cpu liftoff-warm)")" "$(n liftoff-warm)" ""
  row "liftoff warm, empty packages.txt" "$(fmt "$ln")" "$(fmt "$(cpu liftoff-warm-nopkgs)")" "$(n liftoff-warm-nopkgs)" ""
  if [[ -n $lw && -n $ln ]]; then
    d=$(awk -v a="$lw" -v b="$ln" 'BEGIN {print a - b}')
    row "  packages step, warm (difference)" "$(fmt "$d")" "" "" \
      "$(awk -v d="$d" 'BEGIN {print (d < 0.05 ? "target < 0.050 s: met" : "target < 0.050 s: MISSED")}')"
  fi
  row "buildah bud (base in storage)" "$(fmt "$bb")" "$(fmt "$(cpu buildah-bud)")" "$(n buildah-bud)" ""
  row "apt step alone (buildah run)" "$(fmt "$ap")" "$(fmt "$(cpu apt-step)")" "$(n apt-step)" "apt-get update + install + clean"
  if [[ -n $lc && -n $ap ]]; then
    row "liftoff cold / apt step" "$(awk -v l="$lc" -v a="$ap" 'BEGIN {printf "%.2f", l / a}')" "" "" \
      "$(awk -v l="$lc" -v a="$ap" 'BEGIN {print (l * 3 <= a ? "target <= 0.33: met" : "target <= 0.33: MISSED")}')"
  fi
  lp=$(median liftoff-cold-pkgs)
  if [[ -n $lp && -n $ap ]]; then
    row "liftoff cold packages / apt step" "$(awk -v l="$lp" -v a="$ap" 'BEGIN {printf "%.2f", l / a}')" "" "" \
      "$(awk -v l="$lp" -v a="$ap" 'BEGIN {print (l * 3 <= a ? "target <= 0.33: met" : "target <= 0.33: MISSED")}')"
  fi
  lk=$(median liftoff-locked-cold)
  if [[ -n $lk && -n $ap ]]; then
    row "liftoff locked cold / apt step" "$(awk -v l="$lk" -v a="$ap" 'BEGIN {printf "%.2f", l / a}')" "" "" "(the target is about the unlocked cold)"
  fi
  if [[ -n $lc && -n $bb ]]; then
    row "liftoff cold / buildah bud" "$(awk -v l="$lc" -v b="$bb" 'BEGIN {printf "%.2f", l / b}')" "" "" ""
  fi
  printf '\nwall = median, CPU = mean user+sys of the runs; raw data in %s\n' "$results"
  printf '\nliftoff cold, one run, seconds since start (%s):\n' "$results/trace-cold.txt"
  cat "$results/trace-cold.txt"
  printf '\nliftoff cold packages (base indexed), one run (%s):\n' "$results/trace-cold-pkgs.txt"
  cat "$results/trace-cold-pkgs.txt"
  printf '\nliftoff warm, one run (%s):\n' "$results/trace-warm.txt"
  cat "$results/trace-warm.txt"
  if [[ -f $results/trace-buildah.txt ]]; then
    printf '\nbuildah bud, one run: steps and apt milestones (%s):\n' "$results/trace-buildah.txt"
    grep -E 'STEP|^ *[0-9.]+  (Get:1 |Fetched|Reading package lists|Unpacking git |Setting up git |Processing triggers)|COMMIT|exit' \
      "$results/trace-buildah.txt" || true
  fi
} | tee "$results/summary.txt"
