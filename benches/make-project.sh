#!/usr/bin/env bash
# Writes a deterministic Astro project of about 20 MB for the scenario bench.
#
# Usage: make-project.sh DIR BASE_REF
#   DIR       created (must not exist, or be empty)
#   BASE_REF  what the Dockerfile's FROM names, e.g. 127.0.0.1:5000/astronomer/astro-runtime:12.6.0
#
# Contents (same bytes on every run and machine; only FROM depends on BASE_REF):
#   dags/          400 DAG files, 6-11 KB of Python each (3.4 MB), 20 of them in sub-packages
#   include/data/  47 CSV files of 256 KB (12 MB): compressible text, like exported tables
#   include/models 2 binary files of 2 MiB (4.2 MB): incompressible, like a pickled model
#   plugins/, tests/, .astro/config.yaml, .dockerignore, empty packages.txt/requirements.txt
# The generator is awk with its own xorshift state (no rand(): mawk and gawk differ) and
# openssl's AES-CTR keystream for the binary files, so no Python or network is needed.
set -euo pipefail
dir=${1:?usage: make-project.sh DIR BASE_REF}
base=${2:?usage: make-project.sh DIR BASE_REF}
mkdir -p "$dir"
cd "$dir"
mkdir -p dags/common dags/etl include/data include/models include/sql plugins tests/dags .astro

printf 'FROM %s\n' "$base" >Dockerfile
printf '# Astro Runtime includes the following pre-installed providers packages\n' >requirements.txt
printf '# System-level packages, one per line\n' >packages.txt
printf 'astro\n.git\n.env\nairflow_settings.yaml\nlogs/\n*.pyc\n__pycache__\n' >.dockerignore
printf 'project:\n  name: liftoff-bench\n' >.astro/config.yaml
printf '"""Shared helpers for the bench DAGs."""\n' >dags/common/__init__.py
printf '"""ETL DAGs."""\n' >dags/etl/__init__.py
printf 'from airflow.plugins_manager import AirflowPlugin\n\n\nclass BenchPlugin(AirflowPlugin):\n    name = "bench"\n' >plugins/bench_plugin.py
printf 'def test_dag_count():\n    assert True\n' >tests/dags/test_dag_example.py

# One awk run writes every DAG and CSV; file names and bytes depend only on the seed.
awk -v seed=88172645 '
function rnd(n) {
  # 31-bit Park-Miller step: exact in double precision on every awk.
  seed = (seed * 16807) % 2147483647
  return seed % n
}
BEGIN {
  split("extract transform load validate notify aggregate publish archive score enrich", verbs, " ")
  split("orders customers invoices sensors clicks payments events ledgers shipments reviews", nouns, " ")
  split("OK WARN FAIL RETRY SKIP", states, " ")
  for (d = 0; d < 400; d++) {
    sub_dir = (d < 10) ? "dags/etl/" : ((d < 20) ? "dags/common/" : "dags/")
    f = sprintf("%sdag_%04d.py", sub_dir, d)
    printf "\"\"\"Bench DAG %d: moves %s.\"\"\"\n", d, nouns[d % 10 + 1] > f
    printf "from datetime import datetime, timedelta\n\nfrom airflow import DAG\n" > f
    printf "from airflow.operators.python import PythonOperator\n\n" > f
    printf "default_args = {\"owner\": \"team-%d\", \"retries\": %d, \"retry_delay\": timedelta(minutes=%d)}\n\n", d % 7, rnd(4), 1 + rnd(30) > f
    ntasks = 20 + rnd(20); names = ""
    for (t = 0; t < ntasks; t++) {
      v = verbs[rnd(10) + 1]; n = nouns[rnd(10) + 1]
      names = names (t ? ", " : "") v "_" n "_" t
      printf "\ndef %s_%s_%d(**context):\n", v, n, t > f
      printf "    \"\"\"%s the %s partition for the logical date.\"\"\"\n", v, n > f
      printf "    rows = context[\"ti\"].xcom_pull(task_ids=\"%s_%d\") or []\n", n, rnd(1000) > f
      printf "    threshold = %d.%02d\n", rnd(1000), rnd(100) > f
      printf "    return [r for r in rows if r.get(\"%s\", 0) > threshold]\n", n > f
    }
    printf "\n\nwith DAG(\n    dag_id=\"bench_%04d\",\n    start_date=datetime(2024, %d, %d),\n", d, 1 + rnd(12), 1 + rnd(28) > f
    printf "    schedule=\"%d %d * * *\",\n    catchup=False,\n    default_args=default_args,\n) as dag:\n", rnd(60), rnd(24) > f
    printf "    previous = None\n" > f
    printf "    for fn in [%s]:\n", names > f
    printf "        task = PythonOperator(task_id=fn.__name__, python_callable=fn)\n" > f
    printf "        if previous is not None:\n            previous >> task\n        previous = task\n" > f
    close(f)
  }
  for (c = 0; c < 47; c++) {
    f = sprintf("include/data/%s_%02d.csv", nouns[c % 10 + 1], c)
    printf "id,day,source,value,status,comment\n" > f
    size = 0; row = 0
    while (size < 262144) {
      line = sprintf("%d,2024-%02d-%02d,%s-%03d,%d.%04d,%s,%s %s\n", row, 1 + rnd(12), 1 + rnd(28), \
        nouns[rnd(10) + 1], rnd(1000), rnd(100000), rnd(10000), states[rnd(5) + 1], \
        verbs[rnd(10) + 1], nouns[rnd(10) + 1])
      if (size + length(line) > 262144) break
      printf "%s", line > f
      size += length(line); row++
    }
    close(f)
  }
}'

for m in 0 1; do
  head -c $((2 * 1024 * 1024)) /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0$m -iv 00000000000000000000000000000000 >"include/models/model_$m.bin"
done
for q in 0 1 2 3; do
  printf -- '-- report %d\nSELECT day, count(*) FROM events WHERE kind = %d GROUP BY day;\n' "$q" "$q" \
    >"include/sql/report_$q.sql"
done
