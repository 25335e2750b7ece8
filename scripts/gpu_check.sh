#!/usr/bin/env bash
# bash scripts/gpu_check.sh
# On a machine with one NVIDIA GPU (about 5 minutes on an H100): the GPU-marked tests, then the
# training benchmark on a randomly initialised Llama-3.2-1B-sized model (no download) in bf16,
# printing tokens/s and model FLOPs utilisation for the reference-style and the eu step.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 EU_CACHE="${EU_CACHE:-$PWD/.eu-cache}"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true

echo "== GPU tests"
python -m pytest -q -m gpu tests/ -p no:cacheprovider

echo "== training benchmark: random Llama-3.2-1B, bf16 autocast, 16 + 16 examples per step"
python benchmarks/train_step.py --model random-llama-3.2-1b --precision bf16-mixed --examples 16 --steps 8 --warmup 3 \
    --forget tests/data/forget.jsonl --generation 0

echo "== the same with 64 + 64 examples per step"
python benchmarks/train_step.py --model random-llama-3.2-1b --precision bf16-mixed --examples 64 --steps 5 --warmup 2 \
    --forget tests/data/forget.jsonl --generation 0
