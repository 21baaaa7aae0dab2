#!/bin/sh
# Set everything up and run the main job. Until the daemon lands, that is the
# bundled dynamic DNN under the offline toolkit: what each active-group count g
# costs and what it is worth, measured on this machine:
#   gearbox model info   — parameters, FLOPs and accuracy per g
#   gearbox model bench  — latency per g on 1 and 2 threads
#   gearbox model eval   — top-1 accuracy per g on the 10,000 Fashion-MNIST test images
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
MODEL=$(ls models/*.safetensors | head -n 1)
GEARBOX=build/gearbox
DATA=/usr/share/datasets/fashion-mnist

echo
echo "== gearbox model info $MODEL"
$GEARBOX model info "$MODEL"
for t in 1 2; do
	echo
	echo "== gearbox model bench $MODEL --threads $t"
	$GEARBOX model bench "$MODEL" --threads "$t" --iterations 300
done
echo
echo "== gearbox model eval $MODEL --dataset $DATA"
$GEARBOX model eval "$MODEL" --dataset "$DATA"
