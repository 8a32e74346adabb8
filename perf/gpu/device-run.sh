#!/usr/bin/env bash
# The one script the lead runs on the GPU machine (H100/H200), from the repository root, after:
#   ../shared/gpu/pack.sh .device/bundle.tgz tests/RawInfer.Gpu.Tests/RawInfer.Gpu.Tests.csproj \
#       tests/RawInfer.Native.Tests/RawInfer.Native.Tests.csproj src/RawInfer.Cli/RawInfer.Cli.csproj perf/gpu/RawInfer.GpuBench/RawInfer.GpuBench.csproj
#   mkdir -p .device/models && cp ../shared/models/{stories260K.bin,tok512.bin} .device/models/
#   (and ../shared/tokenizers into .device/tokenizers if the kernel or tokenizer tests need it)
# There: mkdir -p ri && tar xzf .device/bundle.tgz -C ri && bash perf/gpu/device-run.sh
# Every step is guarded (its own timeout, its own log under $OUT, rc in $OUT/summary.txt) so one failure does
# not stop the rest; the timeouts add up to 9 minutes.
set -u
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
BENCH=ri/rawinfer-gpubench
MODEL=${TMPDIR:-/tmp}/rawinfer-synthetic-1b-f16.gguf
export RAWINFER_TEST_MODELS=$PWD/.device/models
[ -d .device/tokenizers ] && export RAWINFER_TEST_TOKENIZERS=$PWD/.device/tokenizers
export RAWINFER_KERNEL_CACHE=${TMPDIR:-/tmp}/rawinfer-kernels
export DOTNET_gcServer=0

step() { # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc seconds=$((SECONDS - t0))" | tee -a "$OUT/summary.txt"
  tail -n 3 "$OUT/$name.log"
}

step nvidia-smi 15 nvidia-smi
step native-tests 40 ri/RawInfer.Native.Tests -parallel none
step gpu-tests 120 ri/RawInfer.Gpu.Tests -parallel none
step memcheck-kernels 75 compute-sanitizer --tool memcheck --error-exitcode 9 ri/RawInfer.Gpu.Tests -namespace RawInfer.Gpu.Tests.Kernels -parallel none
step write-model 50 "$BENCH" write-model path="$MODEL" shape=1b dtype=f16
step bandwidth 15 "$BENCH" bandwidth
step decode-batch1 45 "$BENCH" decode model="$MODEL" batch=1 context=128 steps=128
step decode-batch100 45 "$BENCH" decode model="$MODEL" batch=100 context=128 steps=32
step attention 20 bash -c "$BENCH attention batch=1 context=2048 && $BENCH attention batch=100 context=512 && $BENCH attention batch=32 context=2048"
step torch-baseline 40 python3 perf/gpu/torch_baseline.py --out "$OUT/torch.json" --steps 64
# the engine issue's continuous-vs-static comparison where a step costs about the same at 1 row as at 100
step serving-110m 90 ri/rawinfer bench --shape 110m --dtype f16 --model-path "${TMPDIR:-/tmp}/rawinfer-bench-110m-f16.gguf" \
  --device cuda --requests 300 --rate 100 --prompt-lengths 16:128 --output-lengths 1:512 --static-batch 16,100 \
  --padded-batch 100 --decode-concurrency 1,4,16,64 --decode-tokens 64
rm -f "$MODEL" "${TMPDIR:-/tmp}/rawinfer-bench-110m-f16.gguf"

# one file with every JSON result line
grep -h '^{' "$OUT"/*.log > "$OUT/results.jsonl" 2>/dev/null
cat "$OUT/summary.txt"
