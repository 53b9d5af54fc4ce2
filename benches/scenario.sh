#!/usr/bin/env bash
# Scenario bench: build and push a 20 MB Astro project on the stand-in Runtime base to a local
# registry, cold / no change / one DAG changed, with liftoff and (side by side) with buildah;
# and liftoff on a fresh runner (empty local cache, locks committed, a shared cache `--cache`
# in the same registry filled by an earlier build from another cache directory).
#
# Usage: benches/scenario.sh [--no-buildah] [--runs N] [--cold-runs N] [--buildah-runs N]
#   --runs N       timed runs of the warm scenarios (default 10)
#   --cold-runs N  timed runs of the cold scenarios (default 3)
#   --buildah-runs N  timed runs of each buildah scenario (default 3: one cold run takes a minute)
#   --no-buildah   liftoff only
# Needs root the first time (the stand-in base is built with debootstrap and buildah, about
# 3 minutes, network to Debian and PyPI); the base is kept in target/bench-base/ and reused.
# Installs hyperfine, docker-registry, skopeo, buildah and jq with apt-get when missing.
# Leaves the raw hyperfine JSON, the step traces and the logs in target/bench-scenario/.
set -euo pipefail

runs=10 cold_runs=3 buildah_runs=3 with_buildah=1
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --cold-runs) cold_runs=${2:?--cold-runs N}; shift 2 ;;
    --buildah-runs) buildah_runs=${2:?--buildah-runs N}; shift 2 ;;
    --no-buildah) with_buildah=0; shift ;;
    *) echo "usage: $0 [--no-buildah] [--runs N] [--cold-runs N] [--buildah-runs N]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/benches
base_dir=$root/target/bench-base
results=$root/target/bench-scenario
work=$(mktemp -d /tmp/liftoff-bench.XXXXXX)
registry_pid=
cleanup() {
  if [[ -n $registry_pid ]]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=benches/lib.sh
. "$here/lib.sh"

install_missing hyperfine:hyperfine docker-registry:docker-registry skopeo:skopeo jq:jq
((with_buildah)) && install_missing buildah:buildah
build_liftoff

# A free loopback port: nothing listens on it now.
port=
for _ in $(seq 1 100); do
  p=$((20000 + RANDOM % 40000))
  if [[ -z $(ss -Hltn "sport = :$p") ]]; then port=$p; break; fi
done
[[ -n $port ]] || { echo "no free loopback port found" >&2; exit 1; }
host=127.0.0.1:$port
regdata=$work/registry
rm -rf "$results"
mkdir -p "$regdata" "$results"
{
  date -u; echo "nproc $(nproc)"; lscpu | grep -E "^Model name"; free -h | sed -n 2p; echo "start: $(uptime)"
} >"$results/machine.txt"
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $regdata
  delete:
    enabled: true
http:
  addr: $host
  secret: bench-secret
YML
docker-registry serve "$work/registry.yml" >"$results/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://$host/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://$host/v2/" >/dev/null || { echo "docker-registry did not start; see $results/registry.log" >&2; exit 1; }
say "registry on $host (storage $regdata)"

base_ref=$host/astronomer/astro-runtime:12.6.0
if [[ -f $base_dir/oci/index.json ]]; then
  say "stand-in base from $base_dir/oci (cached) -> $base_ref"
  # skopeo's oci: transport skips index entries with a Docker media type, so liftoff pushes the
  # layout as it is; skopeo then checks that the registry holds that exact manifest.
  "$liftoff" push --quiet --insecure-registry "$host" "oci:$base_dir/oci:12.6.0" "$base_ref" >/dev/null
  want=$(jq -r '.manifests[0].digest' "$base_dir/oci/index.json")
  got=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$base_ref")
  [[ $got == "$want" ]] || { echo "base in the registry is $got, expected $want" >&2; exit 1; }
else
  say "building the stand-in base into $base_dir (about 3 minutes)"
  "$(standin_script)" "$base_dir" "$base_ref"
fi

project=$work/project
"$here/make-project.sh" "$project" "$base_ref"
say "project $project: $(find "$project" -type f | wc -l) files, $(find "$project" -type f -printf '%s\n' | awk '{s += $1} END {print s}') bytes"

# The scenarios. Each one-DAG-changed run appends a unique line, so no layer cache can hold it.
edit_dag="printf '# edit %s\n' \"\$(date +%s%N)\" >>$project/dags/dag_0123.py"
export LIFTOFF_CACHE_DIR=$work/liftoff-cache
dest=$host/bench/app:latest
lo_cmd="$liftoff build $project --push $dest --insecure-registry $host --quiet"
lo_reset="rm -rf $LIFTOFF_CACHE_DIR $regdata/docker/registry/v2/repositories/bench/app"

broot=$work/buildah-root
B="buildah --root $broot --runroot $work/buildah-run --storage-driver vfs"
b_dest=$host/bench/app-buildah:latest
b_log=$results/buildah-stderr.log
b_cmd="$B bud --quiet --isolation chroot --layers --tls-verify=false -t localhost/bench/app:latest $project >/dev/null 2>>$b_log && $B push --quiet --tls-verify=false localhost/bench/app:latest docker://$b_dest 2>>$b_log"
b_reset="rm -rf $broot $work/buildah-run $regdata/docker/registry/v2/repositories/bench/app-buildah"

# One traced run: every stderr line of liftoff with the seconds since start, to see where time goes.
trace() { # NAME
  $liftoff build "$project" --push "$dest" --insecure-registry "$host" 2>&1 | stamp_lines >"$results/trace-$1.txt"
}

say "liftoff: cold ($cold_runs runs)"
hf liftoff-cold "$cold_runs" --prepare "$lo_reset" "$lo_cmd"
say "liftoff: no change ($runs runs)"
hf liftoff-nochange "$runs" --warmup 1 "$lo_cmd"
say "liftoff: one DAG changed ($runs runs)"
hf liftoff-onedag "$runs" --warmup 1 --prepare "$edit_dag" "$lo_cmd"
eval "$lo_reset"
trace cold
trace nochange
eval "$edit_dag"
trace onedag

# A fresh runner: the locks the builds above wrote are in the project (committed), the shared
# cache was filled by a build from another cache directory, the local cache is empty.
cache_ref=$host/bench/liftoff-cache
fresh_cmd="$liftoff build $project --locked --push $dest --cache $cache_ref --insecure-registry $host --quiet"
LIFTOFF_CACHE_DIR=$work/liftoff-cache-filler $fresh_cmd >/dev/null
say "liftoff: fresh runner with a shared cache ($runs runs)"
hf liftoff-fresh "$runs" --prepare "$lo_reset" "$fresh_cmd"
eval "$lo_reset"
$liftoff build "$project" --locked --push "$dest" --cache "$cache_ref" --insecure-registry "$host" 2>&1 | stamp_lines >"$results/trace-fresh.txt"

# One buildah run of a scenario with bud and push timed apart, to see where its time goes.
btrace() { # NAME
  local t0=${EPOCHREALTIME/./} t1 t2
  $B bud --isolation chroot --layers --tls-verify=false -t localhost/bench/app:latest "$project" >"$results/buildah-trace-$1.log" 2>&1
  t1=${EPOCHREALTIME/./}
  $B push --tls-verify=false localhost/bench/app:latest "docker://$b_dest" >>"$results/buildah-trace-$1.log" 2>&1
  t2=${EPOCHREALTIME/./}
  printf 'buildah %s: bud %d ms, push %d ms\n' "$1" $(((t1 - t0) / 1000)) $(((t2 - t1) / 1000)) | tee -a "$results/trace-buildah.txt" >&2
}

if ((with_buildah)); then
  : >"$results/trace-buildah.txt"
  say "buildah: cold ($buildah_runs runs)"
  if hf buildah-cold "$buildah_runs" --prepare "$b_reset" "$b_cmd"; then
    # The ONBUILD RUN triggers of the base must have run, or the comparison is not like for like.
    say "buildah storage (vfs): $(du -sh "$broot" | cut -f1)"
    $B inspect --type image localhost/bench/app:latest | jq -r '.OCIv1.history[].created_by' >"$results/buildah-history.txt"
    grep -q install-python-dependencies "$results/buildah-history.txt" \
      && say "buildah ran the base's ONBUILD triggers (see $results/buildah-history.txt)" \
      || say "WARNING: buildah's image history shows no ONBUILD RUN trigger; see $results/buildah-history.txt"
    say "buildah: no change ($buildah_runs runs)"
    hf buildah-nochange "$buildah_runs" --warmup 1 "$b_cmd" || { say "buildah failed:"; tail -20 "$b_log" >&2; }
    say "buildah: one DAG changed ($buildah_runs runs)"
    hf buildah-onedag "$buildah_runs" --warmup 1 --prepare "$edit_dag" "$b_cmd" || { say "buildah failed:"; tail -20 "$b_log" >&2; }
    btrace nochange || say "buildah failed; see $results/buildah-trace-nochange.log"
    eval "$edit_dag"
    btrace onedag || say "buildah failed; see $results/buildah-trace-onedag.log"
  else
    say "buildah failed; the end of $b_log:"; tail -20 "$b_log" >&2
  fi
  $B rm --all >/dev/null 2>&1 || true
fi

{
  printf '\n%-10s %13s %13s %8s %13s %13s  %s\n' scenario "liftoff wall" "buildah wall" "ratio" "liftoff CPU" "buildah CPU" "target (liftoff wall)"
  # The fresh runner is compared with buildah's cold build (buildah has no shared cache here).
  for s in cold:-:cold nochange:0.1:nochange onedag:0.15:onedag fresh:1.0:cold; do
    IFS=: read -r name target against <<<"$s"
    l=$(median "liftoff-$name") b=$(median "buildah-$against")
    ratio=-
    [[ -n $l && -n $b ]] && ratio=$(awk -v l="$l" -v b="$b" 'BEGIN {printf "%.1fx", b / l}')
    verdict=
    [[ $target != - && -n $l ]] && verdict=$(awk -v l="$l" -v t="$target" 'BEGIN {print (l < t ? "< " t " s: met" : "< " t " s: MISSED")}')
    printf '%-10s %13s %13s %8s %13s %13s  %s\n' "$name" "$(fmt "$l")" "$(fmt "$b")" "$ratio" \
      "$(fmt "$(cpu "liftoff-$name")")" "$(fmt "$(cpu "buildah-$name")")" "$verdict"
  done
  printf '\nseconds; wall = median, CPU = mean user+sys; %s warm / %s cold liftoff runs, %s buildah runs;\nratio = buildah / liftoff (wall); raw data in %s\n' "$runs" "$cold_runs" "$buildah_runs" "$results"
} | tee "$results/summary.txt"
echo "end: $(uptime)" >>"$results/machine.txt"
