#!/usr/bin/env bash
# Writes Tests/Fixtures/: for each kind of run a checkpoint saved in the middle of an epoch
# (<name>/mid.safetensors) and the checkpoint the same code wrote after resuming it for five more
# batches (<name>/end.safetensors). FixtureTests resumes every mid.safetensors with the current
# code and requires the run state of end.safetensors bit for bit and its parameters, optimizer
# moments and carried state to within float rounding (OpenBLAS's summation order depends on the
# processor), so checkpoints written by earlier versions keep resuming exactly. The fixtures in the
# repository were written by commit 4edc37c (before the run loops were merged); run this again
# only to add a kind. Debug build, one compute thread.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
swift build
bin=.build/debug
out=Tests/Fixtures
work=$(mktemp -d)
tiny=(--data corpora/tiny --batch-size 4 --bptt 6 --threads 1)
pair() {  # NAME PROGRAM DATA ARGS... : a run stopped after $mid batches (7), then resumed for 5
  local name="$1" program="$2" data="$3"; shift 3
  rm -rf "$work/$name"
  "$bin/$program" "$@" --max-batches "${mid:-7}" --save "$work/$name" > /dev/null
  cp "$work/$name/last.safetensors" "$work/$name-mid.safetensors"
  "$bin/$program" --data "$data" --resume "$work/$name/last.safetensors" --threads 1 --max-batches 5 > /dev/null
  mkdir -p "$out/$name"
  cp "$work/$name-mid.safetensors" "$out/$name/mid.safetensors"
  cp "$work/$name/last.safetensors" "$out/$name/end.safetensors"
}
pair lm-sgd train-ptb corpora/tiny "${tiny[@]}" --nlayers 2 --emsize 8 --nhid 8 --tied true --dropout 0.2 --lr 2 --clip 1
pair lm-adam train-ptb corpora/tiny "${tiny[@]}" --emsize 8 --nhid 8 --optimizer adam --lr 0.01 --weight-decay 1e-5 --cell gru
pair lm-awd train-ptb corpora/tiny "${tiny[@]}" --nlayers 2 --emsize 8 --nhid 8 --tied true --dropout-input 0.2 \
  --dropout-hidden 0.1 --dropout-output 0.3 --locked-dropout --embedding-dropout 0.1 --weight-drop 0.2 --ar 2 --tar 1 \
  --asgd --nonmono 0 --lr-decay 1 --variable-bptt --lr 2 --epochs 5
# A budget plan made and re-planned (an anchor) before the stop: log every batch so it is checked often.
mid=60 pair lm-budget train-ptb corpora/tiny "${tiny[@]}" --emsize 8 --nhid 8 --lr 2 --epochs 40 --cosine-budget \
  --max-minutes 0.1 --log-interval 2
"$bin/rnnlm" make-data sentiment --output "$work/sentiment" --count 300 --test-size 60 --seed 5 > /dev/null
pair classifier train-classifier "$work/sentiment" --data "$work/sentiment" --emsize 8 --nhid 8 --batch-size 16 \
  --lr 0.01 --threads 1
"$bin/rnnlm" make-data addition --digits 2 --output "$work/addition" --count 400 --valid-size 40 --test-size 40 \
  --seed 5 > /dev/null
pair seq2seq train-seq2seq "$work/addition" --data "$work/addition" --emsize 8 --nhid 16 --reverse --batch-size 16 \
  --lr 0.01 --dropout 0.1 --threads 1
ls -l "$out"/*
