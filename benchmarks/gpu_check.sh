# GPU check of the runner (train, retrieval and NLI stages of configs/gpu.yaml) on an XLM-R-base-shaped encoder with
# random weights, for a GPU machine with PyTorch but no hub or package index. Prepared on a machine with pip:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl \
#     sentence-transformers==5.7.0 transformers==4.57.6 tokenizers==0.22.2 huggingface_hub==0.36.2 datasets==4.8.5 \
#     dill==0.4.1 multiprocess==0.70.19 fsspec==2026.2.0 textattack==0.3.11; pip wheel --no-deps . -w .whl
#   mkdir .gpu; tar czf .gpu/data.tar.gz -C ../shared/data xquad mlqa_r xnli README.md
#   tar czf .gpu/tok.tar.gz -C "$(hybrid-nli materialise)" tokenizer.json tokenizer_config.json special_tokens_map.json
# then on the GPU machine, in the repo root with .whl and .gpu: bash benchmarks/gpu_check.sh (results in $OUT).
# SMALL=1 PY=.venv/bin/python shrinks everything for a CPU check of this script.
set -eo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/gpu-out}; W=${W:-/tmp/gpuw}; mkdir -p $OUT $W/data $W/tok
PY=${PY:-python3}
if [ -z "$SMALL" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $W/site .whl/*.whl
  export PYTHONPATH=$PWD:$W/site
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
tar xzf .gpu/data.tar.gz -C $W/data && tar xzf .gpu/tok.tar.gz -C $W/tok
$PY -c "import torch, transformers, sentence_transformers as st; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'st', st.__version__)"
$PY benchmarks/gpu_random_xlmr.py $W/tok $W/xlmr-base-random
export HYBRID_NLI_DATA=$W/data HYBRID_NLI_CACHE=$W/cache
if [ -n "$SMALL" ]; then
  SIZE=("train={batch_size: 8, max_length: 32, max_steps: 2, save_steps: 1, freeze_embeddings: true}" retrieval_questions=10 nli_train_rows=60 nli_dev_rows=30 nli_test_rows=20 "nli_langs=[en, de]")
else
  SIZE=("train={batch_size: 128, max_length: 128, max_steps: 200, save_steps: 100, freeze_embeddings: false, lr: 2.0e-5}")
fi
SET=(model=$W/xlmr-base-random name=gpu-check "strategies=[base, hybrid]" "alphas=[0.5]" "seeds=[0]" "sources=[xquad]" "${SIZE[@]}")
HN() { $PY -c "import sys; from hybrid_nli.cli import main; sys.exit(main())" "$@"; }
HN run --config configs/gpu.yaml --set "${SET[@]}" --out $W/runs --dry-run
for k in train retrieval nli; do HN run --config configs/gpu.yaml --set "${SET[@]}" --out $W/runs --only $k 2>&1 | grep -av "it/s\]\|s/it\]\|examples/s\]" | tee -a $OUT/run.log; done
find $W/runs -name '*.safetensors' -delete; rm -rf $W/runs/gpu-check/train/*/checkpoints
tar czf $OUT/gpu-check.tar.gz -C $W/runs gpu-check
