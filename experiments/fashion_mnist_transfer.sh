#!/usr/bin/env bash
# Prepares the transfer benchmark (docs/transfer.md) from Debian's Fashion-MNIST (no downloads):
#   data/fashion_mnist_source.h5   classes 1,3,5,7,8,9 (Trouser, Dress, Sandal, Sneaker, Bag,
#                                  Ankle boot), as they are
#   data/fashion_mnist_target.h5   classes 0,2,4,6 (T-shirt/top, Pullover, Coat, Shirt) relabelled
#                                  0-3, inverted (v -> 255 - v), few-shot: the first 300 training
#                                  images of each class (the test split whole)
#   weights/fashion_mnist_source_resnet20.h5   the source model, trained by
#                                              experiments/fashion_mnist_transfer_source.toml
# then experiments/fashion_mnist_transfer.toml runs on them. Extra arguments go to the source
# run (e.g. --set dense.epochs=1 for a smoke run). Existing stores and weights are kept.
#   experiments/fashion_mnist_transfer.sh [--set ...]
set -euo pipefail
cd "$(dirname "$0")/.."
passlab=${PASSLAB_BIN:-build/passlab}
mpirun=(${PASSLAB_MPIRUN:-mpirun -np 2 --oversubscribe})

mkdir -p data weights
[ -f data/fashion_mnist_source.h5 ] ||
  "$passlab" prepare fashion-mnist --classes 1,3,5,7,8,9 --out data/fashion_mnist_source.h5
[ -f data/fashion_mnist_target.h5 ] ||
  "$passlab" prepare fashion-mnist --classes 0,2,4,6 --shift invert --train-per-class 300 --out data/fashion_mnist_target.h5

weights=weights/fashion_mnist_source_resnet20.h5
if [ ! -f "$weights" ]; then
  source_toml=experiments/fashion_mnist_transfer_source.toml
  "${mpirun[@]}" "$passlab" run "$source_toml" "$@"
  # The dense file is named by the source config's dense id.
  id=$("$passlab" config "$source_toml" "$@" | sed -n 's/.*dense_id = \([0-9a-f]*\).*/\1/p')
  out=$("$passlab" config "$source_toml" "$@" | sed -n '/^\[output\]/,/^\[/s/^dir = "\(.*\)"$/\1/p')
  cp "$out/dense/$id.h5" "$weights"
  echo "source model: $weights (dense id $id)"
fi
