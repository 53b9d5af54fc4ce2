#!/usr/bin/env bash
# Prints the medians of the layer-writing bench (`cargo bench -p liftoff-layers`) from
# target/criterion/, with each writer's throughput as a share of the one-core limit:
# sha256 and gzip run one after the other on a core, so the limit is 1 / (1/sha256 + 1/gzip),
# both measured on the same tar bytes in the same bench run. The 2-thread writer is compared
# with twice that limit (two cores' worth), which is what "per core used" means.
#
# Usage: benches/criterion-summary.sh [CRITERION_DIR]   (default: target/criterion)
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")/.." && pwd)/target/criterion}
[[ -d $dir ]] || { echo "$dir: no criterion results; run cargo bench -p liftoff-layers first" >&2; exit 1; }

printf '%-18s %-24s %12s %12s %10s\n' group function "median" "MiB/s" "of limit"
for group in "$dir"/*/; do
  g=$(basename "$group")
  [[ -f $group/write_layer/new/estimates.json ]] || continue
  bytes=$(jq -r '.throughput.Bytes' "$group/write_layer/new/benchmark.json")
  med() { jq -r '.median.point_estimate' "$group/$1/new/estimates.json"; }
  sha=$(med sha256_only) gz=$(med gzip_only)
  for f in sha256_only gzip_only write_layer write_layer_parallel_2t; do
    [[ -f $group/$f/new/estimates.json ]] || continue
    awk -v g="$g" -v f="$f" -v ns="$(med "$f")" -v b="$bytes" -v sha="$sha" -v gz="$gz" 'BEGIN {
      mibs = b / 1048576 / (ns / 1e9)
      limit = b / 1048576 / ((sha + gz) / 1e9)   # one core: sha256 then gzip
      share = "-"
      if (f == "write_layer") share = sprintf("%.0f%%", 100 * mibs / limit)
      if (f == "write_layer_parallel_2t") share = sprintf("%.0f%% of 2x", 100 * mibs / (2 * limit))
      printf "%-18s %-24s %10.1f ms %12.1f %10s\n", g, f, ns / 1e6, mibs, share
    }'
  done
done
