#pragma once
// Builds any passlab architecture by name (config::known_archs()):
//   resnet18/34/50      torchvision ResNet; stem imagenet (7x7/2 + max-pool) or cifar (3x3/1, no pool)
//   resnet20/56         CIFAR ResNet (He et al. 2016, 16/32/64 channels) with option-B shortcuts
//                       (1x1 conv + BN where shape changes), named like torchvision's ResNet
//   vgg11_bn/16_bn/19_bn torchvision VGG-BN; stem cifar replaces avgpool(7)+3 FC by
//                       global avgpool + one Linear(512, classes) named classifier.0
//   mobilenet_v2        torchvision MobileNetV2; stem cifar makes features.0 and the first
//                       24-channel block stride 1 (8x total downsampling)
// Names of parameters and buffers equal torchvision's state_dict keys for the imagenet stems.
#include <cstdint>
#include <string>

#include "passlab/models/prunable.hpp"

namespace passlab::models {

// "cifar" or "imagenet": `stem` unless it is "auto" (cifar below 64 px). Throws ConfigError.
std::string resolve_stem(const std::string& arch, const std::string& stem, int64_t input_size);

// Throws ConfigError for an unknown arch/stem or a width vector of the wrong length.
PrunableNetworkPtr make_model(const ModelSpec& spec);
PrunableNetworkPtr make_model(const std::string& arch, int64_t num_classes, int64_t in_channels, int64_t input_size,
                              const std::string& stem = "auto");

}  // namespace passlab::models
