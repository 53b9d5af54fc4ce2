#!/usr/bin/env bash
# Requirements bench (issue 3): an Astro project whose requirements.txt is pandas==2.2.3,
# apache-airflow-providers-amazon==9.2.0 and apache-airflow-providers-slack==9.0.0, on the
# stand-in Runtime base served by a loopback registry, built by liftoff (`--output oci:`) and by
# `buildah bud` (whose ONBUILD RUN runs pip in the container). Needs the real package index.
#
# Usage: benches/requirements.sh [--no-buildah] [--runs N] [--cold-runs N] [--buildah-runs N]
#   --runs N          timed runs of the warm liftoff scenarios (default 10)
#   --cold-runs N     timed runs of each cold liftoff scenario (default 3)
#   --buildah-runs N  buildah builds, each from empty storage (default 3)
#   --no-buildah      liftoff only
#
# liftoff scenarios (hyperfine; LIFTOFF_CACHE_DIR in a scratch folder):
#   cold        empty cache, no lock: uv resolves, wheels are downloaded, the layers written
#   warm        the same again: current lock, warm cache (the requirements layer is a cache hit)
#   lockedcold  current lock, empty cache: downloads and layer writing, no resolution
#   noreq-*     the same project with an empty requirements.txt, cold and warm: subtracted from
#               the above, it gives what the requirements alone cost in each scenario
# Each scenario also gets one traced run: liftoff's stderr lines with seconds since the start.
# buildah: `buildah bud --isolation chroot --storage-driver vfs --layers`, empty storage each
# run, its output timestamped the same way to time the pip step (RUN install-python-dependencies)
# apart from the rest. The host's CA bundle is mounted over the container's, so that pip trusts
# what the host trusts (nothing else differs from a plain build).
#
# The stand-in base must be in target/bench-base/ (benches/scenario.sh or
# benches/make-runtime-base.sh builds it). Installs hyperfine, docker-registry, skopeo,
# buildah and jq with apt-get when missing. Raw data stays in target/bench-requirements/.
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
base_dir=$root/target/bench-base
results=$root/target/bench-requirements
work=$(mktemp -d /tmp/liftoff-reqbench.XXXXXX)
registry_pid=
cleanup() {
  if [[ -n $registry_pid ]]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"

[[ -f $base_dir/oci/index.json ]] || {
  echo "no stand-in base in $base_dir; build it with $(standin_script) $base_dir (or run benches/scenario.sh once)" >&2
  exit 1
}
install_missing hyperfine:hyperfine docker-registry:docker-registry skopeo:skopeo jq:jq
((with_buildah)) && install_missing buildah:buildah
build_liftoff

# The pinned uv, when this machine has it: liftoff would otherwise fetch it into the (emptied)
# cache on every cold run. A version manager's shim is skipped for the binary behind it.
uv_pin=$(sed -n 's/^pub const UV_VERSION: &str = "\(.*\)";/\1/p' "$root/src/ops/uv/binary.rs")
uv_found=
for c in "${LIFTOFF_UV:-}" "$(command -v pyenv >/dev/null && pyenv which uv 2>/dev/null || true)" "$(command -v uv || true)"; do
  if [[ -n $c && -x $c ]] && [[ $("$c" --version 2>/dev/null) == "uv $uv_pin"* ]]; then uv_found=$c; break; fi
done
if [[ -n $uv_found ]]; then
  export LIFTOFF_UV=$uv_found
  say "uv $uv_pin: $uv_found (LIFTOFF_UV)"
else
  unset LIFTOFF_UV
  say "no uv $uv_pin here: every cold run includes fetching it"
fi

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
  date -u; echo "nproc $(nproc)"; lscpu | grep -E "^Model name"; free -h | sed -n 2p
  echo "start: $(uptime)"; echo "liftoff: $($liftoff --version 2>&1 || true)"; echo "uv: ${uv_found:-fetched}"
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
base_ref=$host/astronomer/astro-runtime:12.6.0
LIFTOFF_CACHE_DIR=$work/push-cache "$liftoff" push --quiet --insecure-registry "$host" "oci:$base_dir/oci:12.6.0" "$base_ref" >/dev/null
want=$(jq -r '.manifests[0].digest' "$base_dir/oci/index.json")
got=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$base_ref")
[[ $got == "$want" ]] || { echo "base in the registry is $got, expected $want" >&2; exit 1; }
say "registry on $host holds the stand-in base $want"

# The project: testdata/example, FROM the registry copy of the base, the three requirements.
proj=$work/project
cp -a "$root/testdata/example" "$proj"
rm -f "$proj/.astro/liftoff.toml" "$proj/.astro/pylock.toml"
printf 'FROM %s\n' "$base_ref" >"$proj/Dockerfile"
printf '%s\n' pandas==2.2.3 apache-airflow-providers-amazon==9.2.0 apache-airflow-providers-slack==9.0.0 \
  >"$proj/requirements.txt"
cp -a "$proj" "$work/project-buildah"
cp -a "$proj" "$work/project-noreq"
: >"$work/project-noreq/requirements.txt"

export LIFTOFF_CACHE_DIR=$work/liftoff-cache
out=$work/out
lo() { echo "$liftoff build $1 --output oci:$out:bench --insecure-registry $host --quiet"; }
reset_cold="rm -rf $LIFTOFF_CACHE_DIR $out $proj/.astro/pylock.toml"
reset_cache="rm -rf $LIFTOFF_CACHE_DIR $out"

trace() { # NAME PROJECT: one liftoff build with its stderr lines timestamped
  rm -rf "$out"
  $liftoff build "$2" --output "oci:$out:bench" --insecure-registry "$host" 2>&1 | stamp_lines >"$results/trace-$1.txt"
}

say "liftoff: cold ($cold_runs runs; resolution, downloads, layers)"
hf cold "$cold_runs" --prepare "$reset_cold" "$(lo "$proj")"
say "liftoff: warm, current lock ($runs runs)"
hf warm "$runs" --warmup 1 --prepare "rm -rf $out" "$(lo "$proj")"
say "liftoff: empty requirements.txt, warm ($runs runs)"
hf noreq-warm "$runs" --warmup 1 --prepare "rm -rf $out" "$(lo "$work/project-noreq")"
say "liftoff: current lock, empty cache ($cold_runs runs)"
hf lockedcold "$cold_runs" --prepare "$reset_cache" "$(lo "$proj")"
say "liftoff: empty requirements.txt, empty cache ($cold_runs runs)"
hf noreq-cold "$cold_runs" --prepare "$reset_cache" "$(lo "$work/project-noreq")"
cp "$proj/.astro/pylock.toml" "$results/pylock.toml"
eval "$reset_cold"
trace cold "$proj"
trace warm "$proj"
eval "$(lo "$work/project-noreq")" >/dev/null # its own layers, so that its trace is warm too
trace noreq-warm "$work/project-noreq"
eval "$reset_cache"
trace lockedcold "$proj"
# The requirements layer (the one before the project's COPY . .): gzip and tar sizes.
py_digest=$(jq -r '.manifests[0].digest' "$out/index.json" | cut -d: -f2)
py_blob=$(jq -r '.layers[-2].digest' "$out/blobs/sha256/$py_digest" | cut -d: -f2)
py_gz=$(stat -c %s "$out/blobs/sha256/$py_blob")
py_tar=$(gzip -dc "$out/blobs/sha256/$py_blob" | wc -c)
grep -q 'Resolving requirements' "$results/trace-lockedcold.txt" \
  && say "WARNING: the locked run resolved again; see $results/trace-lockedcold.txt"
rm -rf "$out"

# buildah, from empty storage each run; bash's `time` gives wall, user and sys of the build.
lcold_write=$(awk '/Fetched/ {f = $1} /(Cached|Built) / && !b {b = $1} END {printf "%.3f", b - f}' "$results/trace-lockedcold.txt")
b_ok=0
if ((with_buildah)); then
  broot=$work/buildah-root brun=$work/buildah-run
  B=(buildah --root "$broot" --runroot "$brun" --storage-driver vfs)
  ca=()
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && ca=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  : >"$results/buildah-times.txt"
  for i in $(seq 1 "$buildah_runs"); do
    rm -rf "$broot" "$brun"
    say "buildah: cold build $i/$buildah_runs"
    TIMEFORMAT='%R %U %S'
    if { time "${B[@]}" bud --isolation chroot --layers --tls-verify=false "${ca[@]}" \
      -t localhost/bench/req:latest "$work/project-buildah" 2>&1 | stamp_lines >"$results/buildah-trace-$i.txt"; } \
      2>>"$results/buildah-times.txt"; then
      b_ok=$((b_ok + 1))
    else
      say "buildah build $i failed; the end of its output:"; tail -20 "$results/buildah-trace-$i.txt" >&2
      sed -i '$d' "$results/buildah-times.txt"
    fi
    if ((i == 1 && b_ok == 1)); then
      say "buildah storage (vfs): $(du -sh "$broot" | cut -f1)"
      "${B[@]}" inspect --type image localhost/bench/req:latest | jq -r '.OCIv1.history[].created_by' >"$results/buildah-history.txt"
    fi
  done
  rm -rf "$broot" "$brun"
fi

# The pip step of each buildah trace: from its STEP line to pip's "Successfully installed" (pip
# itself) and to the next STEP line (pip plus buildah committing the layer).
: >"$results/pip-steps.txt"
for f in "$results"/buildah-trace-*.txt; do
  [[ -f $f ]] || continue
  awk '
    /STEP [0-9\/]*: RUN .*install-python-dependencies/ && !s { s = $1; next }
    s && !p && /Successfully installed/ { p = $1 }
    s && !n && / STEP [0-9\/]*:/ { n = $1 }
    END { if (s && p) printf "%.3f %.3f\n", p - s, (n ? n - s : p - s) }
  ' "$f" >>"$results/pip-steps.txt"
done

med() { sort -g | awk '{a[NR] = $1} END {if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
sub() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a - b}' || true; }
# Seconds in a trace from the first line matching $2 (or 0) to the first matching $3.
span() { awk -v a="$2" -v b="$3" 'a != "" && !s && $0 ~ a {s = $1} !e && $0 ~ b {e = $1} END {if ((s || a == "") && e) printf "%.3f", e - s}' "$results/trace-$1.txt"; }
lastof() { awk -v a="$2" '$0 ~ a {t = $1} END {if (t) printf "%.3f", t}' "$results/trace-$1.txt"; }

b_wall=$(awk '{print $1}' "$results/buildah-times.txt" 2>/dev/null | med || true)
b_cpu=$(awk '{print $2 + $3}' "$results/buildah-times.txt" 2>/dev/null | med || true)
pip_only=$(awk '{print $1}' "$results/pip-steps.txt" | med)
pip_step=$(awk '{print $2}' "$results/pip-steps.txt" | med)
cold=$(median cold) warm=$(median warm) lcold=$(median lockedcold)
req_cold=$(sub "$cold" "$(median noreq-cold)")
req_warm=$(sub "$warm" "$(median noreq-warm)")
req_lcold=$(sub "$lcold" "$(median noreq-cold)")
ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1fx", b / a}' || printf -- '-'; }
{
  printf '\n%-52s %9s %9s %10s\n' scenario "wall" "CPU" "pip/this"
  row() { # LABEL WALL [CPU] [-: no ratio]
    local r=-
    [[ ${4:-} == - ]] || r=$(ratio "$2" "$pip_only")
    printf '%-52s %9s %9s %10s\n' "$1" "$(fmt "$2")" "$(fmt "${3:-}")" "$r"
  }
  row "liftoff cold: whole build (no lock, empty cache)" "$cold" "$(cpu cold)"
  row "  requirements only (cold - noreq-cold)" "$req_cold"
  row "liftoff warm: whole build (current lock, warm cache)" "$warm" "$(cpu warm)"
  row "  requirements only (warm - noreq-warm)" "$req_warm"
  row "liftoff locked, empty cache: whole build" "$lcold" "$(cpu lockedcold)"
  row "  requirements only (lockedcold - noreq-cold)" "$req_lcold"
  row "liftoff noreq-cold: empty requirements.txt" "$(median noreq-cold)" "$(cpu noreq-cold)" -
  row "liftoff noreq-warm: empty requirements.txt" "$(median noreq-warm)" "$(cpu noreq-warm)" -
  row "buildah bud, empty storage: whole build" "$b_wall" "$b_cpu" -
  row "  pip step (RUN to next STEP, with commit)" "$pip_step" "" -
  row "  pip itself (RUN to 'Successfully installed')" "$pip_only" "" -
  printf '\nseconds; liftoff: median of hyperfine (%s cold / %s warm runs), CPU = mean user+sys;\n' "$cold_runs" "$runs"
  printf 'buildah: median of %s builds (CPU = user+sys of the whole build); pip/this = pip itself / row\n' "$b_ok"
  printf 'whole builds, buildah / liftoff cold: %s wall, %s CPU\n' "$(ratio "$cold" "$b_wall")" "$(ratio "$(cpu cold)" "$b_cpu")"
  [[ -n $py_gz ]] && awk -v c="$py_gz" -v u="$py_tar" -v lc="$lcold_write" 'BEGIN {
    printf "requirements layer: %.1f MB gzip, %.1f MB tar; lockedcold wrote it in ~%.2f s (last Fetched to first layer line): %.0f MB/s of tar\n", c / 1e6, u / 1e6, lc, u / 1e6 / lc }' 
  printf '\nsplit of the traced liftoff runs (seconds from start):\n'
  printf '  cold: base indexed by %s; uv resolution %s; downloads to last Fetched %s; to first layer line %s; total %s\n' \
    "$(lastof cold Indexing)" "$(span cold 'Resolving +requirements' 'Locked')" \
    "$(lastof cold Fetched)" "$(span cold '' '(Cached|Built) ')" "$(lastof cold .)"
  printf '  lockedcold: base indexed by %s; last Fetched %s; first layer line %s; total %s\n' \
    "$(lastof lockedcold Indexing)" "$(lastof lockedcold Fetched)" "$(span lockedcold '' '(Cached|Built) ')" "$(lastof lockedcold .)"
  printf '  warm: first layer line %s (noreq-warm %s); total %s (noreq-warm %s)\n' \
    "$(span warm '' '(Cached|Built) ')" "$(span noreq-warm '' '(Cached|Built) ')" "$(lastof warm .)" "$(lastof noreq-warm .)"
  awk -v t="$req_warm" 'BEGIN {if (t != "") print "target: warm requirements layer < 0.050 s: " (t < 0.05 ? "met" : "MISSED") " (" t " s)"}'
  [[ -n $pip_only && -n $req_cold ]] && awk -v l="$req_cold" -v w="$cold" -v p="$pip_only" 'BEGIN {
    print "target: liftoff cold requirements <= pip / 3 (" sprintf("%.3f", p / 3) " s): " (l <= p / 3 ? "met" : "MISSED") " (" l " s)"
    print "        whole liftoff cold build <= pip / 3: " (w <= p / 3 ? "met" : "MISSED") " (" sprintf("%.3f", w) " s)" }'
  printf 'raw data in %s\n' "$results"
} | tee "$results/summary.txt"
echo "end: $(uptime)" >>"$results/machine.txt"
