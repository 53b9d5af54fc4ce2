#!/usr/bin/env bash
# Deploy bench (issue 13): the 400-DAG scenario project (benches/make-project.sh) deployed with
# `liftoff deploy`, offline, on the repository's synthetic Runtime base (testdata/bases).
#   dags-only   `liftoff deploy --dags` to the embedded `local` deployment, one DAG changed
#               before each run, side by side with `tar czf` of the same dags/ folder
#   full-one-dag  `liftoff deploy` (image + DAGs) to a self-hosted deployment whose images go
#               to a local registry, one DAG changed before each run, warm cache: the image is
#               unchanged, so no image blob is uploaded (checked in the registry's access log)
#
# Usage: benches/deploy.sh [--runs N]
# Installs hyperfine, docker-registry and jq with apt-get when missing. Leaves the hyperfine
# JSON and the logs in target/bench-deploy/.
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
results=$root/target/bench-deploy
work=$(mktemp -d /tmp/liftoff-bench-deploy.XXXXXX)
registry_pid=
cleanup() {
  if [[ -n $registry_pid ]]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=benches/lib.sh
. "$here/lib.sh"

install_missing hyperfine:hyperfine docker-registry:docker-registry jq:jq
build_liftoff
rm -rf "$results"
mkdir -p "$results"
{
  date -u; echo "nproc $(nproc)"; lscpu | grep -E "^Model name"; free -h | sed -n 2p; echo "start: $(uptime)"
} >"$results/machine.txt"

port=
for _ in $(seq 1 100); do
  p=$((20000 + RANDOM % 40000))
  if [[ -z $(ss -Hltn "sport = :$p") ]]; then port=$p; break; fi
done
[[ -n $port ]] || { echo "no free loopback port found" >&2; exit 1; }
host=127.0.0.1:$port
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $work/registry
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

proj=$work/proj
"$here/make-project.sh" "$proj" quay.io/astronomer/astro-runtime:12.6.0
cat >"$proj/.astro/liftoff.toml" <<TOML
[mirrors]
"quay.io/astronomer/astro-runtime" = "oci:$root/testdata/bases/runtime-12"
TOML
export LIFTOFF_CACHE_DIR=$work/cache

# dags-only: the embedded local deployment (no deployment declared yet).
say "first deploy to local (not timed)"
"$liftoff" deploy --project-dir "$proj" -f --yes -q >/dev/null
change="echo \"# run \$RANDOM\$RANDOM\" >>$proj/dags/dag_0100.py"
hf dags-only "$runs" --prepare "$change" \
  "$liftoff deploy --project-dir $proj --dags -f --yes -q"
hf tar-czf "$runs" --prepare "$change" \
  "tar czf $work/dags.tar.gz -C $proj dags"

# full deploy with one DAG changed, to a registry.
cat >>"$proj/.astro/liftoff.toml" <<TOML

[deployments.bench]
kind = "self-hosted"
image = "$host/bench/airflow"
dags = "file://$work/store"
TOML
say "first deploy to the registry (not timed)"
"$liftoff" deploy bench --project-dir "$proj" -f --yes -q >/dev/null
uploads_before=$(grep -c 'PUT /v2/bench/airflow/blobs/uploads' "$results/registry.log" || true)
hf full-one-dag "$runs" --prepare "$change" \
  "$liftoff deploy bench --project-dir $proj -f --yes -q"
uploads_after=$(grep -c 'PUT /v2/bench/airflow/blobs/uploads' "$results/registry.log" || true)
echo "image blob uploads during full-one-dag: $((uploads_after - uploads_before))" | tee "$results/uploads.txt" >&2

dags=$(median dags-only) tar=$(median tar-czf) full=$(median full-one-dag)
{
  echo "| case | median (s) |"
  echo "|---|---|"
  echo "| liftoff deploy --dags (400 DAGs, local) | $(fmt "$dags") |"
  echo "| tar czf dags/ | $(fmt "$tar") |"
  echo "| liftoff deploy, one DAG changed (registry, warm) | $(fmt "$full") |"
  echo
  echo "dags-only / tar czf: $(awk -v a="$dags" -v b="$tar" 'BEGIN { printf "%.2f", a / b }')x"
  cat "$results/uploads.txt"
} | tee "$results/summary.md"
