#!/usr/bin/env bash
# The quality job (.ci/run runs it): every configs/ci-*.yaml is trained on the real datasets,
# exported to ONNX, evaluated there (kiln export --eval: the model that is served, not only the
# eager one) and gated against quality/<name>.json (kiln gate). Then the same config trained for
# a single step must FAIL its gate: proof, on every CI run, that the gate catches a worse model.
#
#   scripts/quality.sh                 gate every ci config (exit 1 on a regression)
#   scripts/quality.sh --calibrate     train each config under seeds 1, 2 and 3, and rewrite its
#                                      baseline: mean values, tolerance = 2.5 × (max − min)
#   scripts/quality.sh configs/ci-twotower.yaml    one config only
#
# Work goes to $QUALITY_WORK (default .cache/quality), emptied first. Needs $KILN_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."

work="${QUALITY_WORK:-.cache/quality}"
calibrate=0
configs=()
for arg in "$@"; do
  case "$arg" in
    --calibrate) calibrate=1 ;;
    -*) echo "quality: unknown option $arg (expected --calibrate or config paths)" >&2; exit 2 ;;
    *) configs+=("$arg") ;;
  esac
done
((${#configs[@]} > 0)) || configs=(configs/ci-*.yaml)

kiln() { node bin/kiln.js "$@"; }

# Trains $1 into $2/runs with extra --set overrides, exports it with --eval to $2/onnx.
train_and_export() {
  local config="$1" dir="$2"
  shift 2
  rm -rf "$dir"
  mkdir -p "$dir"
  kiln train --quiet --config "$config" --runs "$dir/runs" "$@"
  local run
  run=$(find "$dir/runs" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | head -n 1)
  kiln export --run "$run" --out "$dir/onnx" --eval
}

status=0
for config in "${configs[@]}"; do
  name="$(basename "$config" .yaml)"
  baseline="quality/$name.json"
  started=$SECONDS
  if ((calibrate)); then
    exports=()
    for seed in 1 2 3; do
      train_and_export "$config" "$work/$name/seed$seed" --set "seed=$seed"
      exports+=(--run "$work/$name/seed$seed/onnx")
    done
    kiln gate --update "${exports[@]}" --baseline "$baseline" --description "$config, exported to ONNX (kiln export --eval), seeds 1-3"
  else
    train_and_export "$config" "$work/$name/gated"
    if ! kiln gate --run "$work/$name/gated/onnx" --baseline "$baseline"; then
      echo "quality: $name FAILED its gate ($baseline)"
      status=1
    fi
    # A deliberately degraded model (one step of training) must fail the same gate.
    train_and_export "$config" "$work/$name/degraded" --set train.steps=1 --set train.warmup_steps=0 --set train.checkpoint_every=1
    degraded=0
    kiln gate --run "$work/$name/degraded/onnx" --baseline "$baseline" > "$work/$name/degraded/gate.txt" || degraded=$?
    if ((degraded == 1)); then
      echo "quality: $name trained for 1 step fails its gate, as it must: $(grep -o 'gate FAILED: [0-9]* metric(s) regressed' "$work/$name/degraded/gate.txt")"
    else
      echo "quality: $name trained for 1 step did NOT fail its gate (exit $degraded): the gate cannot catch a broken model"
      cat "$work/$name/degraded/gate.txt"
      status=1
    fi
  fi
  echo "quality: $name took $((SECONDS - started)) s"
done
exit "$status"
