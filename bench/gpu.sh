#!/usr/bin/env bash
# The GPU check of the Stable Diffusion backend (issue 5): builds a UNet of Stable
# Diffusion 1.5's size and layout with random float16 weights (no download, ~5 s),
# then runs the onnx backend at 512 x 512, DPM-Solver++ 2M, 20 steps, guidance 4, at
# batch sizes 1, 4, 8 and 16 on `webgpu` and, where the CUDA provider is installed,
# `cuda`, printing images/s and UNet steps/s per batch size as each finishes, and a
# table at the end. Meant to finish in under 8 minutes on one GPU.
#
#   bash bench/gpu.sh                # the check (needs dist/: npm run build)
#   bash bench/gpu.sh --dry-run      # the same path on the CPU with a tiny UNet, in seconds
#   bash bench/gpu.sh --pack [--with-node]
#       packs what the check needs at run time and git does not track (dist/, the
#       node_modules it loads: onnxruntime-node's linux-x64 binaries,
#       @huggingface/transformers and sharp; with --with-node, this node binary) into
#       bench/out/gpu-carry/ (about 26 MB, 50 MB with node), for a machine that gets
#       the working tree and that folder alone; the check unpacks it there.
#
# Environment:
#   MEDSYN_GPU_CHECK_DEVICES  devices to time, in order (default webgpu,cuda; dry run: cpu)
#   MEDSYN_GPU_CHECK_SECONDS  the whole script's time budget in seconds (default 450)
#   MEDSYN_GPU_CHECK_BATCHES  batch sizes (default 1,4,8,16; dry run: 1,2)
#   MEDSYN_GPU_CHECK_CACHE    where the model folder and results go (default bench/out/gpu)
#   NODE                      the node binary (default: node on the PATH)
# Each device runs in its own process under `timeout`, so that a provider that
# crashes or hangs costs only its own share of the budget.
set -uo pipefail
cd "$(dirname "$0")/.."

node=${NODE:-node}
budget=${MEDSYN_GPU_CHECK_SECONDS:-450}
devices=${MEDSYN_GPU_CHECK_DEVICES:-webgpu,cuda}
batches=${MEDSYN_GPU_CHECK_BATCHES:-1,4,8,16}
cache=${MEDSYN_GPU_CHECK_CACHE:-bench/out/gpu}
common=(--unet sd15 --size 512 --steps 20)
if [[ "${1:-}" == "--dry-run" ]]; then
  shift
  devices=${MEDSYN_GPU_CHECK_DEVICES:-cpu}
  batches=${MEDSYN_GPU_CHECK_BATCHES:-1,2}
  common=(--unet tiny --size 64 --steps 3)
fi
common+=(--cache "$cache")
start=$SECONDS
say() { echo "gpu-check $*"; }
carry=bench/out/gpu-carry

if [[ "${1:-}" == "--pack" ]]; then
  [[ -f dist/bench/gpu.js ]] || npx tsc -p tsconfig.json || exit 2
  mkdir -p "$carry"
  # What dist/bench/gpu.js loads: onnxruntime-node (+ common), and the tokenizer's
  # @huggingface/transformers, which imports sharp (+ its libvips) at load time.
  modules=(node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist node_modules/onnxruntime-node/bin/napi-v6/linux/x64
    node_modules/onnxruntime-common node_modules/@huggingface/transformers/package.json node_modules/@huggingface/transformers/dist/transformers.node.mjs
    node_modules/@huggingface/tokenizers node_modules/@huggingface/jinja node_modules/sharp node_modules/@img/colour node_modules/@img/sharp-linux-x64
    node_modules/@img/sharp-libvips-linux-x64 node_modules/detect-libc node_modules/semver)
  tar czf "$carry/runtime.tar.gz" dist "${modules[@]}" || exit 2
  if [[ "${2:-}" == "--with-node" ]]; then xz -T0 -6 -c "$(command -v "$node")" >"$carry/node.xz" || exit 2; fi
  say "packed: $(du -sh "$carry" | cut -f1) in $carry ($(ls "$carry" | tr '\n' ' '))"
  exit 0
fi
# On a machine that got the packed folder but no node_modules/dist of its own: unpack it.
if [[ -f "$carry/runtime.tar.gz" && ! -f node_modules/onnxruntime-node/package.json ]]; then
  tar xzf "$carry/runtime.tar.gz" && say "unpacked $carry/runtime.tar.gz"
fi
if ! command -v "$node" >/dev/null && [[ -f "$carry/node.xz" ]]; then
  mkdir -p "$carry/bin"
  if command -v xz >/dev/null; then xz -dc "$carry/node.xz" >"$carry/bin/node"
  else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$carry/node.xz" "$carry/bin/node"; fi
  chmod +x "$carry/bin/node" && node=$carry/bin/node && say "using the packed node"
fi

if ! command -v "$node" >/dev/null; then say "no node binary ($node): install Node 20 or set NODE"; exit 2; fi
if [[ ! -f dist/bench/gpu.js ]]; then
  say "dist/bench/gpu.js is missing: building (npx tsc -p tsconfig.json)"
  npx tsc -p tsconfig.json || { say "cannot build dist/: run npm run build where TypeScript is installed and bring dist/"; exit 2; }
fi
say "node $("$node" --version), $(uname -m), $(nproc) cores; devices $devices; batches $batches; budget ${budget} s"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu-check gpu: /'
fi
if [[ ",$devices," == *",webgpu,"* ]]; then
  if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
    say "warning: no libvulkan.so.1 in ldconfig: webgpu will find no adapter (install or unpack the Vulkan loader)"
  fi
  # NVIDIA's container runtime may put the driver's Vulkan ICD outside the loader's search path.
  nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [[ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" && -f $nvidia_icd ]] && ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES=$nvidia_icd
    say "VK_DRIVER_FILES=$nvidia_icd"
  fi
fi

results=$cache/results-$$.jsonl
mkdir -p "$cache"
"$node" dist/bench/gpu.js --build-only "${common[@]}" || { say "building the model failed"; exit 1; }

# Which providers load at all (a one-node model), so that the time goes to those.
available=()
for device in ${devices//,/ }; do
  probe=$(timeout -k 5 60 "$node" dist/bench/gpu.js --probe --devices "$device" 2>&1) || say "probe $device: exited with status $?"
  grep -v '^available ' <<<"$probe"
  if grep -q "^available $device\$" <<<"$probe"; then available+=("$device"); fi
done
if [[ ${#available[@]} -eq 0 ]]; then say "no device could load: nothing timed"; exit 1; fi

status=0
for i in "${!available[@]}"; do
  device=${available[$i]}
  left=$((budget - (SECONDS - start)))
  share=$((left / (${#available[@]} - i)))
  if ((share < 20)); then say "$device: skipped, ${left} s left of the budget"; continue; fi
  # The driver plans to stop 10 s early; timeout is the backstop.
  timeout -k 5 "$share" "$node" dist/bench/gpu.js --device "$device" --batches "$batches" --seconds $((share - 10)) --results "$results" "${common[@]}" 2>&1
  rc=$?
  if ((rc == 124 || rc == 137)); then say "$device: stopped at its ${share} s share of the budget"; status=1
  elif ((rc != 0)); then say "$device: exited with status $rc"; status=1; fi
done
"$node" dist/bench/gpu.js --summary --results "$results" "${common[@]}"
say "done in $((SECONDS - start)) s"
exit $status
