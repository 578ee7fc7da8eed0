#pragma once
// Per-sample transforms of the loader: uint8 HWC image in, normalised float32 CHW out.
// All randomness comes from the Rng passed in (one per sample, seeded by
// derive_seed(seed, epoch, index)), so results do not depend on thread count or scheduling.
#include <cstdint>
#include <string>
#include <vector>

#include "passlab/core/rng.hpp"

namespace passlab::data {

enum class Augment { none, crop_flip, rrc_flip };
const char* to_string(Augment a);
// "none" | "crop_flip" | "rrc_flip" | "auto" (crop_flip below 64 px, rrc_flip from 64 px).
Augment parse_augment(const std::string& text, int64_t size);

struct TransformSpec {
  Augment augment = Augment::none;
  int64_t in_h = 0, in_w = 0, in_c = 0;  // store image
  int64_t out_size = 0;                  // output is out_size x out_size; 0: the store's height
  int64_t out_c = 0;                     // 0: in_c; 3 with in_c == 1 replicates gray
  int64_t crop_padding = 4;              // crop_flip: zero padding around the image
  double rrc_scale_min = 0.08, rrc_scale_max = 1.0;
  double rrc_ratio_min = 3.0 / 4.0, rrc_ratio_max = 4.0 / 3.0;
  // Per input channel, or per output channel when a gray image is replicated (in_c 1, out_c 3),
  // in [0,1] pixel units.
  std::vector<double> mean, std;
  std::vector<float> lut;         // (v/255 - mean_c)/std_c for v in 0..255, per channel of mean; see finalize
};

// Validates the spec (throws DataError) and fills its lookup table; transform_sample needs it.
void finalize(TransformSpec& spec);

// Writes the transformed sample into `out` (out_c * out_size * out_size floats, CHW).
// `rng` is used only by the random augmentations.
void transform_sample(const TransformSpec& spec, const uint8_t* hwc, Rng& rng, float* out);

// Whether this build can resize images (it uses OpenCV; see PASSLAB_WITH_OPENCV). Without it,
// finalize() refuses rrc_flip and an out_size other than the store's, and resize_center_crop
// throws NotImplementedError ("built without OpenCV: ...").
bool have_image_resize();

// Resizes/crops a decoded image (any size, HWC uint8, 1 or 3 channels) so that its shorter
// side is `size` and takes the centre size x size (OpenCV INTER_AREA to shrink, INTER_CUBIC to
// enlarge). Used by prepare; exposed for tests.
std::vector<uint8_t> resize_center_crop(const uint8_t* hwc, int64_t h, int64_t w, int64_t c, int64_t size);

}  // namespace passlab::data
