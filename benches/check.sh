#!/usr/bin/env bash
# Check bench (issue 14): the DAG parse of a 30-DAG project inside the stand-in Runtime image
# (real Airflow 2.10.5), liftoff against the container path astro-cli takes, in the same run:
#   liftoff-parse-first  `liftoff parse` on an empty cache (the image unpacked: the first
#                        materialisation), one run with a timestamped trace
#   liftoff-parse-warm   `liftoff parse` again (image and tree cached)
#   bare-chroot          `chroot --userspec astro` into a copy of the same tree holding the
#                        project, `python3 -m pytest` of the same test: the floor; then
#                        warm parse and bare chroot alternated, the overhead as the median of
#                        the per-pair differences (robust to a load that comes and goes)
#   buildah-run          what `astro dev parse` does with Docker, with buildah: a container from
#                        the built image (liftoff's, as a docker-archive), the project copied in
#                        (as `docker cp`), `buildah run` of the same pytest, the container removed
# Usage: benches/check.sh [--runs N]
# Needs root (chroot, buildah) and the stand-in base in target/bench-base/ (built by
# benches/make-runtime-base.sh when missing). Leaves hyperfine JSON and logs in
# target/bench-check/.
set -euo pipefail

runs=5
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
base_dir=$root/target/bench-base
results=$root/target/bench-check
work=$(mktemp -d /tmp/liftoff-bench-check.XXXXXX)
# The bare chroot's /proc is mounted; unmount it before removing anything (and never cross
# into another file system).
cleanup() { umount -l "$work/bare/proc" 2>/dev/null || true; rm -rf --one-file-system "$work"; }
trap cleanup EXIT
# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"

install_missing hyperfine:hyperfine jq:jq buildah:buildah
build_liftoff
if [[ ! -f $base_dir/oci/index.json || ! -f $base_dir/runtime-standin.docker.tar ]]; then
  say "building the stand-in base into $base_dir (minutes; needs root and the network)"
  "$(standin_script)" "$base_dir"
fi
rm -rf "$results"
mkdir -p "$results"
{
  date -u; echo "nproc $(nproc)"; lscpu | grep -E "^Model name"; free -h | sed -n 2p
  "$liftoff" --version; hyperfine --version; buildah --version; echo "start: $(uptime)"
} >"$results/machine.txt"

# The project: the example with 30 DAGs (the example DAG under 30 dag ids).
proj=$work/proj
cp -a "$root/testdata/example" "$proj"
printf '[mirrors]\n"quay.io/astronomer/astro-runtime" = "oci:%s"\n' "$base_dir/oci" >"$proj/.astro/liftoff.toml"
for i in $(seq -w 1 30); do
  sed "s/def example_astronauts/def example_astronauts_$i/; s/^example_astronauts()/example_astronauts_$i()/" \
    "$proj/dags/exampledag.py" >"$proj/dags/dag_$i.py"
done
rm "$proj/dags/exampledag.py"
test_py=$root/src/ops/check/test_dag_integrity.py
pytest_args="python3 -m pytest -p no:cacheprovider -q .liftoff-check/test_dag_integrity.py"

export LIFTOFF_CACHE_DIR=$work/cache
say "liftoff parse, first (empty cache)"
stamp "$results/liftoff-parse-first.trace" "$liftoff" parse "$proj"
hf liftoff-parse-first 3 --prepare "rm -rf $LIFTOFF_CACHE_DIR" "$liftoff parse $proj --quiet"
"$liftoff" parse "$proj" --quiet
hf liftoff-parse-warm "$runs" "$liftoff parse $proj --quiet"

# The floor: a plain chroot into a copy of the cached tree with the project in it.
tree=$(ls -d "$LIFTOFF_CACHE_DIR"/trees/*/root | head -1)
bare=$work/bare
cp -a "$tree" "$bare"
for d in dags tests plugins include .astro; do
  [[ -d $proj/$d ]] && cp -a "$proj/$d" "$bare/usr/local/airflow/"
done
mkdir -p "$bare/usr/local/airflow/.liftoff-check" "$bare/proc" "$bare/dev"
cp "$test_py" "$bare/usr/local/airflow/.liftoff-check/"
chown -R 50000:0 "$bare/usr/local/airflow"
mount -t proc proc "$bare/proc"
hf bare-chroot "$runs" \
  "chroot --userspec=50000:0 $bare /bin/sh -c 'cd /usr/local/airflow && HOME=/home/astro AIRFLOW_HOME=/usr/local/airflow PYTHONDONTWRITEBYTECODE=1 $pytest_args'"

# The runner's overhead, paired: the warm parse and the bare chroot alternate, so a load that
# comes and goes weighs on both alike; the median of the per-pair differences.
bare_cmd="chroot --userspec=50000:0 $bare /bin/sh -c 'cd /usr/local/airflow && HOME=/home/astro AIRFLOW_HOME=/usr/local/airflow PYTHONDONTWRITEBYTECODE=1 $pytest_args' >/dev/null"
: >"$results/paired.txt"
for _ in $(seq 1 "$((runs * 2))"); do
  t0=$(date +%s.%N); "$liftoff" parse "$proj" --quiet; t1=$(date +%s.%N)
  bash -c "$bare_cmd"; t2=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%.3f %.3f %.3f\n", b - a, c - b, (b - a) - (c - b) }' >>"$results/paired.txt"
done
paired=$(awk '{ print $3 }' "$results/paired.txt" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f", m }')
# The container path: from, copy (docker cp), run, rm.
broot=$work/buildah-root brun=$work/buildah-run
B="buildah --root $broot --runroot $brun --storage-driver vfs"
export BUILDAH_ISOLATION=chroot
# The image astro would test: the project built (ONBUILD steps applied), as a docker-archive.
"$liftoff" build "$proj" --without-dags --output "docker-archive:$work/built.tar:bench/airflow:latest" --quiet >/dev/null
$B pull --quiet "docker-archive:$work/built.tar" >/dev/null 2>>"$results/buildah.log"
image=$($B images --quiet | head -1)
cat >"$work/buildah-parse.sh" <<SH
#!/bin/sh
set -e
ctr=\$($B from --quiet --pull=never $image)
for d in dags tests plugins include .astro; do
  [ -d $proj/\$d ] && $B copy --quiet --chown 50000:0 \$ctr $proj/\$d /usr/local/airflow/\$d
done
$B copy --quiet --chown 50000:0 \$ctr $test_py /usr/local/airflow/.liftoff-check/test_dag_integrity.py
$B run --user astro --workingdir /usr/local/airflow \$ctr -- $pytest_args >/dev/null
$B rm \$ctr >/dev/null
SH
chmod +x "$work/buildah-parse.sh"
hf buildah-run "$runs" "$work/buildah-parse.sh 2>>$results/buildah.log"

first=$(median liftoff-parse-first) warm=$(median liftoff-parse-warm) bare=$(median bare-chroot) bud=$(median buildah-run)
unpack=$(grep -m1 -E 'Unpacking' "$results/liftoff-parse-first.trace" | awk '{print $1}')
checking=$(grep -m1 -E 'Checking' "$results/liftoff-parse-first.trace" | awk '{print $1}')
{
  echo "| case | median (s) |"
  echo "|---|---|"
  echo "| liftoff parse, first (empty cache: build, unpack, parse) | $(fmt "$first") |"
  echo "| liftoff parse, warm | $(fmt "$warm") |"
  echo "| bare chroot + pytest (floor) | $(fmt "$bare") |"
  echo "| buildah from + copy + run + rm (astro's container path) | $(fmt "$bud") |"
  echo
  echo "warm liftoff vs buildah: $(awk -v a="$bud" -v b="$warm" 'BEGIN { printf "%.2f", a / b }')x faster"
  echo "liftoff overhead over the bare chroot: $(awk -v a="$warm" -v b="$bare" 'BEGIN { printf "%.3f", a - b }') s (medians); paired and interleaved, $((runs * 2)) pairs: median $paired s"
  echo "first run: unpacking started at ${unpack:-?} s, the check at ${checking:-?} s (trace)"
} | tee "$results/summary.md"
