#!/usr/bin/env bash
# Import bench (issue 18): how fast a fresh Python starts in liftoff's image against an image
# pip built, and what compiling the byte-code costs liftoff's build.
#
# The realistic project's requirements (pandas==2.2.3, apache-airflow-providers-amazon==9.2.0,
# apache-airflow-providers-slack==9.0.0, as in benches/requirements.sh) on the stand-in Runtime
# base (its OCI layout, as a mirror of the Runtime):
#   liftoff   `liftoff build --bytecode image`, unpacked with umoci (and, for scale, the same
#             build with `--bytecode off`);
#   pip       the stand-in unpacked with umoci and, in a chroot of it as root, what the
#             Runtime's ONBUILD does: `pip install --no-cache-dir -r requirements.txt`,
#             constrained to the versions liftoff's lock chose (the same distributions);
# then in each, as the astro user (50000), a fresh
#   python3 -c "import pandas, boto3, botocore.session, slack_sdk;
#               botocore.session.get_session().get_service_model('s3')"
# timed with hyperfine (chroot; /proc bound), and liftoff's build of the requirements with
# `--bytecode off` against `--bytecode image` (current lock, empty cache each run: downloads,
# the layer, and for `image` the compiling).
#
# Usage: benches/import.sh [--runs N] [--build-runs N]
#   --runs N        timed imports in each image (default 20)
#   --build-runs N  timed cold builds of each byte-code mode (default 3)
# Needs root (chroot, mounts), umoci, skopeo, hyperfine, jq and the network (PyPI). The stand-in base
# is LIFTOFF_STANDIN, else target/bench-base (benches/make-runtime-base.sh builds it).
# LIFTOFF_BIN names a liftoff binary to use instead of a release build of this tree. Raw data
# stays in target/bench-import/.
set -euo pipefail

runs=20 build_runs=3
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --build-runs) build_runs=${2:?--build-runs N}; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--build-runs N]" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
base_dir=${LIFTOFF_STANDIN:-$root/target/bench-base}
results=$root/target/bench-import
work=$(mktemp -d /tmp/liftoff-importbench.XXXXXX)
mounted=()
cleanup() {
  local m
  for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=benches/lib.sh
. "$root/benches/lib.sh"

[[ $(id -u) == 0 ]] || { echo "$0 needs root (chroot)" >&2; exit 1; }
[[ -f $base_dir/oci/index.json ]] || {
  echo "no stand-in base in $base_dir; build it with $(standin_script) $base_dir" >&2
  exit 1
}
install_missing hyperfine:hyperfine jq:jq umoci:umoci skopeo:skopeo
if [[ -n ${LIFTOFF_BIN:-} ]]; then liftoff=$LIFTOFF_BIN; else build_liftoff; fi
# pip in the chroot gets the proxy settings liftoff gets.
proxy_env=()
for v in http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY; do
  if [[ -n ${!v:-} ]]; then proxy_env+=("$v=${!v}"); fi
done

rm -rf "$results"
mkdir -p "$results"
{
  date -u; echo "nproc $(nproc)"; lscpu | grep -E "^Model name"; free -h | sed -n 2p
  echo "start: $(uptime)"; echo "liftoff: $($liftoff --version 2>&1 || true)"
} >"$results/machine.txt"

# The project: testdata/example on the stand-in (a mirror of the Runtime), the requirements.
proj=$work/project
cp -a "$root/testdata/example" "$proj"
rm -f "$proj/.astro/pylock.toml"
printf '[mirrors]\n"quay.io/astronomer/astro-runtime" = "oci:%s"\n' "$base_dir/oci" >"$proj/.astro/liftoff.toml"
printf '%s\n' pandas==2.2.3 apache-airflow-providers-amazon==9.2.0 apache-airflow-providers-slack==9.0.0 \
  >"$proj/requirements.txt"

export LIFTOFF_CACHE_DIR=$work/liftoff-cache
out=$work/out
say "liftoff: build with byte-code (locks the requirements)"
"$liftoff" build "$proj" --output "oci:$out:bench" --bytecode image 2>&1 | stamp_lines >"$results/trace-liftoff.txt"
cp "$proj/.astro/pylock.toml" "$results/pylock.toml"
umoci unpack --image "$out:bench" "$work/liftoff" >/dev/null
liftoff_root=$work/liftoff/rootfs
# The same build without byte-code (what liftoff's images were before), for scale.
"$liftoff" build "$proj" --output "oci:$work/out-off:bench" --locked --bytecode off --quiet
umoci unpack --image "$work/out-off:bench" "$work/nobytecode" >/dev/null
off_root=$work/nobytecode/rootfs

# The pip image: the stand-in, and pip in it as the Runtime's ONBUILD runs it, the lock's
# versions as constraints.
say "pip: install in a chroot of the stand-in"
# umoci reads OCI manifests only; the stand-in's are Docker's: skopeo converts its archive.
skopeo copy --quiet --format oci "docker-archive:$base_dir/runtime-standin.docker.tar" "oci:$work/base-oci:x"
umoci unpack --image "$work/base-oci:x" "$work/pip" >/dev/null
pip_root=$work/pip/rootfs
awk -F' = ' '/^name = / {gsub(/"/, "", $2); n = $2} /^version = / && n {gsub(/"/, "", $2); print n "==" $2; n = ""}' \
  "$proj/.astro/pylock.toml" >"$pip_root/tmp/constraints.txt"
[[ -s $pip_root/tmp/constraints.txt ]] || { echo "no versions read from the lock" >&2; exit 1; }
cp "$proj/requirements.txt" "$pip_root/tmp/requirements.txt"
cp /etc/resolv.conf "$pip_root/etc/resolv.conf"
# pip trusts what the host trusts (a proxy's CA where HTTPS goes through one).
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$pip_root/etc/ssl/certs/ca-certificates.crt"
for r in "$liftoff_root" "$pip_root" "$off_root"; do
  mkdir -p "$r/proc"
  mount --bind /proc "$r/proc"
  mounted+=("$r/proc")
done
stamp "$results/trace-pip.txt" chroot "$pip_root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 "${proxy_env[@]}" \
  pip install --break-system-packages --no-cache-dir --disable-pip-version-check \
  -r /tmp/requirements.txt -c /tmp/constraints.txt

# The same distributions in both images.
freeze() {
  chroot "$1" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin python3 -m pip list --format=freeze --disable-pip-version-check 2>/dev/null | sort
}
freeze "$liftoff_root" >"$results/freeze-liftoff.txt"
freeze "$pip_root" >"$results/freeze-pip.txt"
if ! diff -u "$results/freeze-pip.txt" "$results/freeze-liftoff.txt" >"$results/freeze.diff"; then
  say "WARNING: the images' distributions differ; see $results/freeze.diff"
fi
pycs() { find "$1/usr" -path '*-packages/*' -name '*.pyc' | wc -l; }
say "byte-code files in site-packages: liftoff $(pycs "$liftoff_root"), pip $(pycs "$pip_root")"

# A fresh interpreter in each image, as the astro user, as a task process starts.
code="import pandas, boto3, botocore.session, slack_sdk; botocore.session.get_session().get_service_model('s3')"
py() { echo "chroot --userspec=50000:0 $1 /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/usr/local/airflow PYTHONPATH=/usr/local/airflow LANG=C.UTF-8 python3 -c \"$code\""; }
eval "$(py "$liftoff_root")" || { echo "the import fails in liftoff's image" >&2; exit 1; }
eval "$(py "$pip_root")" || { echo "the import fails in pip's image" >&2; exit 1; }
say "import: liftoff's image, pip's, liftoff's without byte-code ($runs runs each)"
hf import "$runs" --warmup 3 -n liftoff "$(py "$liftoff_root")" -n pip "$(py "$pip_root")" \
  -n off "$(py "$off_root")"

# The compile cost: the same locked build from an empty cache, byte-code off and on.
say "liftoff: locked build from an empty cache, --bytecode off and image ($build_runs runs each)"
lo() { echo "$liftoff build $proj --output oci:$out:bench --quiet --locked --bytecode $1"; }
hf build "$build_runs" --prepare "rm -rf $LIFTOFF_CACHE_DIR $out" -n off "$(lo off)" -n image "$(lo image)"
rm -rf "$LIFTOFF_CACHE_DIR" "$out"
"$liftoff" build "$proj" --output "oci:$out:bench" --locked --bytecode image 2>&1 | stamp_lines >"$results/trace-compile.txt"

m() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$results/$1.json"; }
q() { jq -r --arg n "$2" '.results[] | select(.command == $n) | [.times[] * 1000 | round / 1000] | sort | "\(.[0]) \(.[-1])"' "$results/$1.json"; }
i_lo=$(m import liftoff) i_pip=$(m import pip) i_off=$(m import off) b_off=$(m build off) b_on=$(m build image)
# Seconds from the "Compiling" line to the next line of the traced build (the compiling and
# the writing of the requirements layer).
compile_s=$(awk '/Compiling/ && !s {s = $1; next} s && !e {e = $1} END {if (s && e) printf "%.3f", e - s}' "$results/trace-compile.txt")
compiled=$(sed -n 's/.*Compiling *\([0-9]*\) Python files.*/\1/p' "$results/trace-compile.txt" | head -1)
echo "end: $(uptime)" >>"$results/machine.txt"
{
  printf '\n%-58s %9s %s\n' measurement median "min max"
  printf '%-58s %9s %s\n' "import, liftoff's image (--bytecode image)" "$(fmt "$i_lo")" "$(q import liftoff)"
  printf '%-58s %9s %s\n' "import, pip's image" "$(fmt "$i_pip")" "$(q import pip)"
  printf '%-58s %9s %s\n' "import, liftoff's image without byte-code (--bytecode off)" "$(fmt "$i_off")" "$(q import off)"
  awk -v a="$i_lo" -v b="$i_pip" 'BEGIN {printf "liftoff / pip: %.3f (target <= 1.10: %s)\n", a / b, (a <= b * 1.1 ? "met" : "MISSED")}'
  printf '%-58s %9s %s\n' "locked build, empty cache, --bytecode off" "$(fmt "$b_off")" "$(q build off)"
  printf '%-58s %9s %s\n' "locked build, empty cache, --bytecode image" "$(fmt "$b_on")" "$(q build image)"
  awk -v a="$b_on" -v b="$b_off" 'BEGIN {printf "compile cost (image - off): %.3f s (%+.0f%%)\n", a - b, (a - b) / b * 100}'
  printf 'traced build: %s files compiled, %s s from the Compiling line to the next\n' "${compiled:--}" "${compile_s:--}"
  printf 'byte-code files in site-packages: liftoff %s, pip %s\n' "$(pycs "$liftoff_root")" "$(pycs "$pip_root")"
  printf 'seconds; hyperfine medians (%s imports, %s builds each); raw data in %s\n' "$runs" "$build_runs" "$results"
} | tee "$results/summary.txt"
