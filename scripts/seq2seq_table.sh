#!/usr/bin/env bash
# Trains train-seq2seq on the generated tasks (rnnlm make-data dates|addition, seed 1, 50,000
# pairs) in the configurations of the README's table and appends one row per run to
# Benchmarks/results/seq2seq.csv. Usage: scripts/seq2seq_table.sh [dates|addition|addition-no-early-stop]...
# (release build first; no argument: dates and addition)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
csv=Benchmarks/results/seq2seq.csv
[ -f "$csv" ] || echo "date,task,flags,test_exact_match,test_loss,best_epoch,epochs_run,wall_s,pairs_per_s,threads,openblas_core" > "$csv"
run() {  # TASK FLAGS...
  local task=$1; shift
  [ -d "$work/$task" ] || "$bin/rnnlm" make-data "$task" --output "$work/$task" > /dev/null
  local start
  start=$(date +%s.%N)
  "$bin/train-seq2seq" --data "$work/$task" --save "$work/run-$RANDOM" "$@" --log-interval 100000 > "$work/log" 2>&1
  local wall
  wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  local line
  line=$(grep "end of training" "$work/log")
  printf '%s,%s,%s,%s,%s,%s,%s,%.1f,%s,%s,%s\n' "$(date -u +%F)" "$task" "$*" \
    "$(sed -E 's/.*test exact match ([0-9.]+).*/\1/' <<< "$line")" "$(sed -E 's/.*test loss ([0-9.]+).*/\1/' <<< "$line")" \
    "$(sed -E 's/.*best epoch ([0-9]+).*/\1/' <<< "$line")" "$(grep -c "end of epoch" "$work/log")" "$wall" \
    "$(sed -E 's/.* ([0-9]+) pairs\/s.*/\1/' <<< "$line")" \
    "$(sed -nE 's/.*threads ([0-9]+),.*/\1/p' "$work/log" | head -1)" \
    "$(sed -nE 's/.*OpenBLAS kernels ([A-Za-z0-9]+).*/\1/p' "$work/log" | head -1)" | tee -a "$csv"
}
for task in "${@:-dates addition}"; do
  for t in $task; do
    case $t in
      dates)
        run dates --attention dot
        run dates --attention none ;;
      addition)
        run addition --attention none
        run addition --attention none --reverse
        run addition --attention none --peeky
        run addition --attention none --reverse --peeky
        run addition --attention dot
        run addition --attention dot --reverse ;;
      addition-no-early-stop)
        run addition --attention none --patience 0
        run addition --attention dot --patience 0 ;;
    esac
  done
done
