#!/usr/bin/env bash
# bash scripts/relearn_resistance.sh [RUNS] [SEED]   (BENIGN=0,50,200 HARMFUL=10,50 choose the attacks' N)
# The tamper-resistance measurement of docs/tamper_resistance.md on the quickstart's scale: plain EU
# (configs/quickstart.yaml), EU + SAM (configs/robust/sam.yaml) and EU + the adversarial inner loop
# (configs/robust/adversarial.yaml), each fitted with seed SEED (and its RetainOnlyFT baseline), then
# attacked with `eu attack relearn`: N = BENIGN benign MMLU pairs (default 0,50,200) and N = HARMFUL
# held-out harmful pairs (default 10,50), 20 AdamW steps at 1e-5 each, measured on the test split (75
# harmful prompts, 75 jailbreak pairs, 141 maths items). Writes RUNS/table.md. Every step resumes: a
# finished fit or attack point is reused when the script is run again.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-runs/tamper}"
SEED="${2:-42}"
BENIGN="${BENIGN:-0,50,200}"
HARMFUL="${HARMFUL:-10,50}"
export PYTHONUNBUFFERED=1
EU="${EU:-python -m eu}"
SUITES=(--harmful_size 75 --jailbreak_size 75 --domain math-basic --domain_size 141 --steps 20 --lr 1e-5)

for variant in eu sam adversarial; do
  run="$RUNS/seed$SEED/$variant"
  overlay=()
  [ "$variant" != eu ] && overlay=(-c "configs/robust/$variant.yaml")
  if [ ! -f "$run/checkpoints/last.ckpt" ]; then
    echo "== fit $variant (seed $SEED)"
    $EU fit -c configs/quickstart.yaml "${overlay[@]}" --seed_everything "$SEED" --trainer.default_root_dir "$run"
  fi
  echo "== attack $variant: benign pairs"
  $EU attack relearn --model "$run/checkpoints/last.ckpt" --examples "$BENIGN" --data benign \
    "${SUITES[@]}" --out "$run/attack_benign"
  echo "== attack $variant: harmful pairs"
  $EU attack relearn --model "$run/checkpoints/last.ckpt" --examples "$HARMFUL" --data harmful \
    "${SUITES[@]}" --out "$run/attack_harmful"
done
python scripts/relearn_resistance_table.py "$RUNS" --plot "$RUNS/asr_by_n.png" | tee "$RUNS/table.md"
