#!/usr/bin/env bash
# Trains train-classifier's encoders (LSTM, GRU, RNN, bag of words) on the generated sentiment
# corpus with the default settings and appends one row per run to
# Benchmarks/results/classifier.csv (test accuracy, wall time, texts/s, OpenBLAS kernels).
# Usage: scripts/classifier_table.sh [extra train-classifier flags...]   (release build first)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release
data=$(mktemp -d)
runs=$(mktemp -d)
trap 'rm -rf "$data" "$runs"' EXIT
"$bin/rnnlm" make-data sentiment --output "$data" > /dev/null
csv=Benchmarks/results/classifier.csv
[ -f "$csv" ] || echo "date,encoder,flags,test_accuracy,test_loss,best_epoch,epochs_run,wall_s,texts_per_s,threads,openblas_core,corpus" > "$csv"
for spec in "LSTM:--cell lstm" "GRU:--cell gru" "RNN:--cell rnn" "bag of words:--bag-of-words"; do
  name=${spec%%:*}
  flags="${spec#*:} $*"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$bin/train-classifier" --data "$data" --save "$runs/${name// /-}" $flags --log-interval 100000 > "$runs/log" 2>&1
  wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  line=$(grep "end of training" "$runs/log")
  accuracy=$(sed -E 's/.*test accuracy ([0-9.]+).*/\1/' <<< "$line")
  loss=$(sed -E 's/.*test loss ([0-9.]+).*/\1/' <<< "$line")
  best=$(sed -E 's/.*best epoch ([0-9]+).*/\1/' <<< "$line")
  rate=$(sed -E 's/.* ([0-9]+) texts\/s.*/\1/' <<< "$line")
  epochs=$(grep -c "end of epoch" "$runs/log")
  threads=$(sed -nE 's/.*threads ([0-9]+),.*/\1/p' "$runs/log" | head -1)
  core=$(sed -nE 's/.*OpenBLAS kernels ([A-Za-z0-9]+).*/\1/p' "$runs/log" | head -1)
  printf '%s,%s,%s,%s,%s,%s,%s,%.1f,%s,%s,%s,%s\n' "$(date -u +%F)" "$name" "$(echo $flags | xargs)" "$accuracy" "$loss" \
    "$best" "$epochs" "$wall" "$rate" "$threads" "$core" "sentiment seed 1 (10000/2000)" | tee -a "$csv"
done
