#!/usr/bin/env bash
# Train the shipped policies arena-tiny and arena-small from scratch: the exact commands of their
# model cards. Records both experts' data, then trains both sizes (and, with REPRO=1, arena-small
# a second time from the same command, to check that retraining reproduces its quality).
#
#   bench/train_models.sh OUT_DIR [WORKERS]
#
# On one H100 with 16 CPU cores this took the times written in OUT_DIR/*/training.json; on a
# CPU-only machine it runs too (add --device cpu to nothing: `train` picks CUDA when present),
# only far slower. Output: OUT_DIR/data/{fighter,market} and OUT_DIR/arena-{tiny,small}[-repro].
set -euo pipefail
OUT=${1:?usage: bench/train_models.sh OUT_DIR [WORKERS]}
W=${2:-8}
FE=${FIGHTER_EPISODES:-450}; ME=${MARKET_EPISODES:-700}; STEPS=${STEPS:-6000}; BS=${BATCH:-512}
FPX="python3 -m fpx_arena"
mkdir -p "$OUT"

# 1. data: the scripted experts under lockstep, prompts made by the LLM agent's prompt builder
$FPX dataset fighter --episodes "$FE" --seed 1 --explore 0.1 --workers "$W" --out "$OUT/data/fighter" --quiet &
p1=$!
$FPX dataset market --episodes "$ME" --seed 2 --explore 0.1 --workers "$W" --out "$OUT/data/market" --quiet &
p2=$!
wait $p1
wait $p2

# 2. training: one model for both games; the runs share the GPU
DATA="$OUT/data/fighter $OUT/data/market"
$FPX train --data $DATA --size tiny --steps "$STEPS" --batch-size "$BS" --seed 0 --eval-every $((STEPS / 6)) \
    --out "$OUT/arena-tiny" --quiet &
p3=$!
$FPX train --data $DATA --size small --steps "$STEPS" --batch-size "$BS" --seed 0 --eval-every $((STEPS / 6)) \
    --out "$OUT/arena-small" --quiet &
p4=$!
if [ "${REPRO:-0}" = "1" ]; then
    $FPX train --data $DATA --size small --steps "$STEPS" --batch-size "$BS" --seed 0 --eval-every $((STEPS / 6)) \
        --out "$OUT/arena-small-repro" --quiet &
    p5=$!
    wait $p5
fi
wait $p3
wait $p4
