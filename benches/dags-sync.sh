#!/usr/bin/env bash
# DAG sidecar bench (issue 15): `liftoff dags sync` against a real S3 server (moto on
# loopback) serving the 400-DAG scenario project's bundles (benches/make-project.sh).
#   latency   a sidecar at --interval 1s; each run changes one DAG, deploys with
#             `liftoff deploy --dags` and measures from the deploy's exit (current.json is its
#             last write) until ROOT/current names the new version
#   idle CPU  a second sidecar at --interval 10s, serving, measured from /proc/PID/stat over
#             30 s (user + system ticks)
#   memory    peak RSS (VmHWM) of both sidecars at the end
#
# Usage: benches/dags-sync.sh [--runs N]
# Needs moto_server (scripts/test installs it: uv tool install 'moto[server]'), curl and jq.
# Leaves the numbers and the logs in target/bench-dags-sync/.
set -euo pipefail

runs=10
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/benches
results=$root/target/bench-dags-sync
work=$(mktemp -d /tmp/liftoff-bench-dags-sync.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=benches/lib.sh
. "$here/lib.sh"

command -v moto_server >/dev/null || { echo "moto_server is missing (uv tool install 'moto[server]')" >&2; exit 1; }
install_missing jq:jq curl:curl
build_liftoff
rm -rf "$results"
mkdir -p "$results"
{
  date -u; echo "nproc $(nproc)"; lscpu | grep -E "^Model name"; free -h | sed -n 2p; echo "start: $(uptime)"
} >"$results/machine.txt"

free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if [[ -z $(ss -Hltn "sport = :$p") ]]; then echo "$p"; return; fi
  done
  echo "no free loopback port found" >&2; exit 1
}

s3_port=$(free_port)
moto_server -H 127.0.0.1 -p "$s3_port" >"$results/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$s3_port/" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS -X PUT "http://127.0.0.1:$s3_port/bench" >/dev/null
export AWS_ENDPOINT_URL=http://127.0.0.1:$s3_port AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing

proj=$work/proj
"$here/make-project.sh" "$proj" quay.io/astronomer/astro-runtime:12.6.0
cat >"$proj/.astro/liftoff.toml" <<TOML
[mirrors]
"quay.io/astronomer/astro-runtime" = "oci:$root/testdata/bases/runtime-12"

[deployments.bench]
kind = "self-hosted"
image = "oci:$work/images"
dags = "s3://bench/dags"
TOML
export LIFTOFF_CACHE_DIR=$work/cache ASTRONOMER_SKIP_PARSE=1

deploy_dags() { "$liftoff" deploy bench --project-dir "$proj" --dags -f --yes --json 2>>"$results/deploy.log" | jq -r .dag_bundle; }
served() { local t; t=$(readlink "$1/current" 2>/dev/null) || true; echo "${t#versions/}"; }
# Each line prefixed with the Unix time it was read (to line the sidecar's steps up with the
# deploys in latency-runs.txt).
epoch_lines() { local line; while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }

say "first deploy (not timed)"
v=$(deploy_dags)
http=$(free_port)
"$liftoff" dags sync bench --project-dir "$proj" --root "$work/serve1" --interval 1s \
  --http-bind "127.0.0.1:$http" --name bench-1s 2> >(epoch_lines >"$results/sidecar-1s.log") &
fast=$!
pids+=("$fast")
for _ in $(seq 1 600); do
  [[ $(served "$work/serve1") == "$v" ]] && break
  sleep 0.05
done
[[ $(served "$work/serve1") == "$v" ]] || { echo "the sidecar did not serve the first deploy" >&2; exit 1; }

say "latency: $runs deploys at --interval 1s"
: >"$results/latency.txt"
: >"$results/latency-runs.txt"
for i in $(seq 1 "$runs"); do
  echo "# run $i $RANDOM" >>"$proj/dags/dag_0123.py"
  v=$(deploy_dags)
  t0=${EPOCHREALTIME/./}
  echo "run $i: $v deployed at $EPOCHREALTIME" >>"$results/latency-runs.txt"
  # `-ef` (same file) is a shell builtin: the wait forks only `sleep`, not a readlink per look.
  while [[ ! "$work/serve1/current/.liftoff-version" -ef "$work/serve1/versions/$v/.liftoff-version" ]]; do
    sleep 0.02
    if (( ${EPOCHREALTIME/./} - t0 > 30000000 )); then echo "run $i: $v not served within 30 s" >&2; exit 1; fi
  done
  t1=${EPOCHREALTIME/./}
  awk -v us=$((t1 - t0)) 'BEGIN { printf "%.3f\n", us / 1e6 }' | tee -a "$results/latency.txt" >&2
  # Deploys at random points of the sidecar's interval.
  sleep "0.$((RANDOM % 10))"
done
curl -fsS "http://127.0.0.1:$http/metrics" >"$results/metrics.txt"

say "idle CPU at --interval 10s over 30 s"
"$liftoff" dags sync bench --project-dir "$proj" --root "$work/serve10" --interval 10s \
  --name bench-10s 2>"$results/sidecar-10s.log" &
idle=$!
pids+=("$idle")
for _ in $(seq 1 600); do
  [[ $(served "$work/serve10") == "$v" ]] && break
  sleep 0.05
done
sleep 2
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
c0=$(ticks "$idle") t0=${EPOCHREALTIME/./}
sleep 30
c1=$(ticks "$idle") t1=${EPOCHREALTIME/./}
cpu_pct=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v us=$((t1 - t0)) 'BEGIN { printf "%.2f", 100 * c / hz / (us / 1e6) }')

hwm() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
rss_fast=$(hwm "$fast") rss_idle=$(hwm "$idle")
sort -n "$results/latency.txt" >"$results/latency-sorted.txt"
count=$(wc -l <"$results/latency-sorted.txt")
median_s=$(awk -v n="$count" 'NR == int((n + 1) / 2) { print }' "$results/latency-sorted.txt")
max_s=$(tail -1 "$results/latency-sorted.txt")
within=$(awk '$1 <= 1.0 { n++ } END { print n + 0 }' "$results/latency-sorted.txt")
switches=$(awk '/^liftoff_dags_sync_total/ { print }' "$results/metrics.txt")
{
  echo "| measure | value |"
  echo "|---|---|"
  echo "| deploy → served, --interval 1s, median of $count (s) | $median_s |"
  echo "| deploy → served, max (s) | $max_s |"
  echo "| runs served within 1 s | $within of $count |"
  echo "| idle CPU at --interval 10s, 30 s | $cpu_pct % |"
  echo "| peak RSS, sidecar at 1s after $count switches | $rss_fast MB |"
  echo "| peak RSS, sidecar at 10s (one switch) | $rss_idle MB |"
  echo
  echo "metrics of the 1s sidecar: $switches"
  echo "end: $(uptime)"
} | tee "$results/summary.md"
