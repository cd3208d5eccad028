#!/usr/bin/env bash
# The GPU checks of issue 11 in one run (about 7 minutes on one H100/H200-class GPU).
#
# Steps, each under its own `timeout` so one hang does not eat the rest; logs go to
# $OUT/<step>.log and the figures to $OUT/summary.txt (7 files in all):
#   1 install  carried wheels from .whl/ (jsonargparse, docstring_parser, typeshed_client,
#              lightly, kornia, kornia_rs), when that folder exists
#   2 tests    the CUDA tests: sync-free steps, device augmentation, transforms on CUDA,
#              MoCo split BatchNorm
#   3 augment  SimCLR views/s: 1-core CPU pipeline vs batched device ops vs kornia
#   4 step     Trainer/bare with channels_last, CARE/SimCLR (per-chunk loop and grouped)
#   5 epoch    end-to-end epoch images/s (loader and device augmentation) and its ratio to
#              the step-only figure, 50,000-image CIFAR-10-format fixture
#
# Usage: OUT=/some/dir bash benchmarks/gpu_suite.sh        (on the GPU machine)
#        SMOKE=1 OUT=/tmp/x bash benchmarks/gpu_suite.sh  (tiny sizes, CPU if no GPU: checks
#                                                          the script itself)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
SMOKE=${SMOKE:-0}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

if [ "$SMOKE" = 1 ]; then
  DEV=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
  BACKBONE=resnet18_cifar BATCH=16 N_IMAGES=64 WORKERS=0 PREC=32-true
  STEP_ARGS="--steps 1 --warmup 1 --rounds 1" AUG_ARGS="--batch-size 32 --repeats 1 --rounds 1 --cpu-samples 8"
  EPOCH_ARGS="--epochs 1 --step-steps 1"
  T_TESTS=300 T_AUG=300 T_STEP=600 T_EPOCH=900
else
  DEV=cuda BACKBONE=resnet18_cifar BATCH=512 N_IMAGES=50000 WORKERS=12 PREC=bf16-mixed
  STEP_ARGS="--steps 20 --warmup 5 --rounds 3" AUG_ARGS="--batch-size 512 --repeats 10 --rounds 3"
  EPOCH_ARGS="--epochs 2 --step-steps 30"
  T_TESTS=90 T_AUG=45 T_STEP=100 T_EPOCH=210
fi
STEP_PREC=${PREC%-true}  # training_step.py says 32 / bf16-mixed

step() {  # step NAME SECONDS COMMAND...: run with a timeout, log, record the exit status
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "== $name: exit $rc in $((SECONDS - start)) s (limit $limit s)" | tee -a "$SUMMARY"
  return 0
}

{
  echo "gpu_suite $(date -u +%FT%TZ) smoke=$SMOKE device=$DEV commit=$(git rev-parse --short HEAD 2>/dev/null)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
  echo "cores: $(nproc)"
} >"$SUMMARY"

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  step install 60 $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
$PY -c "import torch, lightning, torchvision; print('torch', torch.__version__, 'lightning', lightning.__version__, 'torchvision', torchvision.__version__)" >>"$SUMMARY" 2>&1

TESTS=(tests/test_augment_device.py tests/test_augment_ops.py tests/test_split_batchnorm.py tests/test_methods_moco.py)
[ -f tests/test_sync_free_cuda.py ] && TESTS=(tests/test_sync_free_cuda.py "${TESTS[@]}")
SELECT=(-k "cuda or gpu")
step tests "$T_TESTS" $PY -m pytest -q -p no:randomly -p no:cacheprovider -rs "${SELECT[@]}" "${TESTS[@]}"
tail -n 3 "$OUT/tests.log" | sed 's/^/  /' >>"$SUMMARY"

step augment "$T_AUG" $PY benchmarks/gpu_augment.py --device "$DEV" $AUG_ARGS
grep -E "views/s|batch" "$OUT/augment.log" | sed 's/^/  /' >>"$SUMMARY"

step step "$T_STEP" $PY benchmarks/training_step.py --device "$DEV" --backbone $BACKBONE \
  --batch-size $BATCH --precision "$STEP_PREC" --channels-last --care-device-views $STEP_ARGS
grep -E "device=|images/s|bare =|SimCLR time" "$OUT/step.log" | sed 's/^/  /' >>"$SUMMARY"

step epoch "$T_EPOCH" $PY benchmarks/epoch.py --device "$DEV" --backbone $BACKBONE \
  --n-images $N_IMAGES --batch-size $BATCH --precision "$PREC" --workers $WORKERS \
  --augment-on loader device $EPOCH_ARGS
grep -E "fixture|device=|images/s" "$OUT/epoch.log" | sed 's/^/  /' >>"$SUMMARY"

cat "$SUMMARY"
