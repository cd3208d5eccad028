#!/usr/bin/env bash
# Issue 25's GPU run in one command of at most 10 minutes: a gpu-profile table from an empty
# folder, then the Trainer/bare diagnosis with Lightning's profiler.
#
#   1 table  `make reproduce-$TABLE PROFILE=gpu` (default rank: the only table whose
#            estimate, 4-5 min in docs/reproduce.md, fits the 8-minute step; TABLE=table1
#            for Table 1, estimated at 10-18 min) into $OUT/gpu/$TABLE:
#            records, provenance.json, the table; its wall time in summary.txt
#   2 step   benchmarks/training_step.py --steps 100 --rounds 5 --profile-lightning:
#            Trainer/bare and what Lightning adds per step (step.log)
#
# Usage: OUT=/some/dir bash benchmarks/gpu_tables.sh            (on the GPU machine)
#        SMOKE=1 OUT=/tmp/x bash benchmarks/gpu_tables.sh        (CPU, tiny: the first run
#        of care_lambda's local profile, its shortest, and 2 steps: checks the script)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
SMOKE=${SMOKE:-0}
TABLE=${TABLE:-rank}
PY=${PY:-python3}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

if [ "$SMOKE" = 1 ]; then
  PROFILE=local DEV=cpu PREC=32 LIMIT="--limit 1" TABLE=${TABLE_SMOKE:-care_lambda}
  STEP_ARGS="--steps 2 --warmup 1 --rounds 1 --batch-size 16"
  NET="--backbone hssl_mnist_translation --dataset mnist"  # a small CPU network
  T_TABLE=420 T_STEP=120
else
  PROFILE=gpu DEV=cuda PREC=bf16-mixed LIMIT=""
  STEP_ARGS="--steps 100 --rounds 5 --batch-size 512"
  NET="--backbone resnet18_cifar --channels-last"
  T_TABLE=480 T_STEP=90
fi
RESULTS=$OUT/$PROFILE/$TABLE

step() {  # step NAME SECONDS COMMAND...: run with a timeout, log, record time and exit status
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  echo "== $name: exit $? in $((SECONDS - start)) s (limit $limit s)" | tee -a "$SUMMARY"
}

{
  echo "gpu_tables $(date -u +%FT%TZ) smoke=$SMOKE table=$TABLE profile=$PROFILE commit=$(git rev-parse --short HEAD 2>/dev/null)"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
  echo "cores: $(nproc)"
} >"$SUMMARY"

step table "$T_TABLE" $PY -m ssl_geom.reproduce "$TABLE" --profile "$PROFILE" --out "$RESULTS" $LIMIT
grep -E "runs planned|runs finished now" "$OUT/table.log" | sed 's/^/  /' >>"$SUMMARY"
[ -f "$RESULTS/$TABLE.md" ] && sed -n '/^## Claims/,$p' "$RESULTS/$TABLE.md" | head -40 >>"$SUMMARY"

step step "$T_STEP" $PY benchmarks/training_step.py --device "$DEV" $NET \
  --precision "$PREC" --skip-care --profile-lightning $STEP_ARGS
grep -E "device=|images/s|bare =" "$OUT/step.log" | sed 's/^/  /' >>"$SUMMARY"
grep -E "Total|run_training_batch|optimizer_step|training_step|log" "$OUT/step.log" | head -12 \
  | sed 's/^/  /' >>"$SUMMARY"

cat "$SUMMARY"
