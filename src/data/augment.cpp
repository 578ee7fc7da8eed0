#include "passlab/data/augment.hpp"

#include <algorithm>
#include <cmath>
#ifndef PASSLAB_WITHOUT_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"

namespace passlab::data {

const char* to_string(Augment a) {
  switch (a) {
    case Augment::none: return "none";
    case Augment::crop_flip: return "crop_flip";
    case Augment::rrc_flip: return "rrc_flip";
  }
  return "?";
}

Augment parse_augment(const std::string& text, int64_t size) {
  if (text == "none") return Augment::none;
  if (text == "crop_flip") return Augment::crop_flip;
  if (text == "rrc_flip") return Augment::rrc_flip;
  if (text == "auto") return size < 64 ? Augment::crop_flip : Augment::rrc_flip;
  throw ConfigError("unknown augmentation '" + text + "' (expected auto, none, crop_flip or rrc_flip)");
}

bool have_image_resize() {
#ifdef PASSLAB_WITHOUT_OPENCV
  return false;
#else
  return true;
#endif
}

namespace {
void require_resize(const std::string& what) {
  if (!have_image_resize())
    throw NotImplementedError("built without OpenCV: cannot resize images (" + what + "); rebuild with OpenCV");
}
}  // namespace

#ifdef PASSLAB_WITHOUT_OPENCV

std::vector<uint8_t> resize_center_crop(const uint8_t*, int64_t h, int64_t w, int64_t, int64_t size) {
  require_resize(std::to_string(h) + "x" + std::to_string(w) + " to " + std::to_string(size) + "x" + std::to_string(size));
  return {};
}

#else

namespace {
int cv_type(int64_t c) { return c == 1 ? CV_8UC1 : CV_8UC3; }
}  // namespace

std::vector<uint8_t> resize_center_crop(const uint8_t* hwc, int64_t h, int64_t w, int64_t c, int64_t size) {
  PASSLAB_CHECK(h > 0 && w > 0 && (c == 1 || c == 3) && size > 0, InternalError, "resize_center_crop: bad shape");
  cv::Mat src(static_cast<int>(h), static_cast<int>(w), cv_type(c), const_cast<uint8_t*>(hwc));
  cv::Mat scaled;
  const int64_t shorter = std::min(h, w);
  if (shorter == size) {
    scaled = src;
  } else {
    // Shorter side to `size`, the other rounded to keep the aspect ratio.
    const double f = static_cast<double>(size) / static_cast<double>(shorter);
    const int nh = h == shorter ? static_cast<int>(size) : std::max<int>(static_cast<int>(size), static_cast<int>(std::lround(static_cast<double>(h) * f)));
    const int nw = w == shorter ? static_cast<int>(size) : std::max<int>(static_cast<int>(size), static_cast<int>(std::lround(static_cast<double>(w) * f)));
    cv::resize(src, scaled, cv::Size(nw, nh), 0, 0, size < shorter ? cv::INTER_AREA : cv::INTER_CUBIC);
  }
  const int y0 = (scaled.rows - static_cast<int>(size)) / 2, x0 = (scaled.cols - static_cast<int>(size)) / 2;
  cv::Mat crop = scaled(cv::Rect(x0, y0, static_cast<int>(size), static_cast<int>(size)));
  std::vector<uint8_t> out(static_cast<size_t>(size * size * c));
  cv::Mat dst(static_cast<int>(size), static_cast<int>(size), cv_type(c), out.data());
  crop.copyTo(dst);
  return out;
}

#endif  // PASSLAB_WITHOUT_OPENCV

void finalize(TransformSpec& s) {
  PASSLAB_CHECK(s.in_h > 0 && s.in_w > 0 && (s.in_c == 1 || s.in_c == 3), DataError, "transform: bad input shape");
  if (s.out_size == 0) s.out_size = s.in_h;
  if (s.out_c == 0) s.out_c = s.in_c;
  PASSLAB_CHECK(s.out_c == s.in_c || (s.in_c == 1 && s.out_c == 3), DataError,
                "transform: cannot turn " + std::to_string(s.in_c) + " channels into " + std::to_string(s.out_c));
  const int64_t norm_c = static_cast<int64_t>(s.mean.size());
  PASSLAB_CHECK((norm_c == s.in_c || (norm_c == s.out_c && s.in_c == 1)) && s.std.size() == s.mean.size(), DataError,
                "transform: mean/std need one value per store channel (" + std::to_string(s.in_c) +
                    ") or, for a replicated gray store, per output channel (" + std::to_string(s.out_c) + ")");
  PASSLAB_CHECK(s.crop_padding >= 0, DataError, "transform: negative crop padding");
  // Fail here (when the loader is made), not in a worker thread at the first batch.
  if (s.augment == Augment::rrc_flip) require_resize("augment = rrc_flip");
  if (s.in_h != s.out_size || s.in_w != s.out_size)
    require_resize("the store's " + std::to_string(s.in_h) + "x" + std::to_string(s.in_w) + " images to input_size " +
                   std::to_string(s.out_size));
  s.lut.assign(static_cast<size_t>(256 * norm_c), 0.f);
  for (int64_t c = 0; c < norm_c; ++c) {
    PASSLAB_CHECK(s.std[static_cast<size_t>(c)] > 0, DataError, "transform: std must be positive");
    for (int v = 0; v < 256; ++v)
      s.lut[static_cast<size_t>(c * 256 + v)] =
          static_cast<float>((v / 255.0 - s.mean[static_cast<size_t>(c)]) / s.std[static_cast<size_t>(c)]);
  }
}

namespace {

#ifndef PASSLAB_WITHOUT_OPENCV
// torchvision.transforms.RandomResizedCrop.get_params, with passlab's Rng.
cv::Rect rrc_box(const TransformSpec& s, int h, int w, Rng& rng) {
  const double area = static_cast<double>(h) * w;
  const double lr0 = std::log(s.rrc_ratio_min), lr1 = std::log(s.rrc_ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (s.rrc_scale_min + (s.rrc_scale_max - s.rrc_scale_min) * rng.uniform01());
    const double ratio = std::exp(lr0 + (lr1 - lr0) * rng.uniform01());
    const int cw = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int ch = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      const int y = static_cast<int>(rng.uniform_below(static_cast<uint64_t>(h - ch + 1)));
      const int x = static_cast<int>(rng.uniform_below(static_cast<uint64_t>(w - cw + 1)));
      return {x, y, cw, ch};
    }
  }
  // Fallback: central crop with the ratio clamped into range.
  const double in_ratio = static_cast<double>(w) / h;
  int cw = w, ch = h;
  if (in_ratio < s.rrc_ratio_min) {
    ch = static_cast<int>(std::lround(w / s.rrc_ratio_min));
  } else if (in_ratio > s.rrc_ratio_max) {
    cw = static_cast<int>(std::lround(h * s.rrc_ratio_max));
  }
  return {(w - cw) / 2, (h - ch) / 2, cw, ch};
}
#endif

}  // namespace

void transform_sample(const TransformSpec& s, const uint8_t* hwc, Rng& rng, float* out) {
  const int64_t S = s.out_size, C = s.in_c;
  const float* lut = s.lut.data();
  // 1. Geometry to an S x S uint8 image `img` (HWC), unless it is the input itself.
  const uint8_t* img = hwc;
  std::vector<uint8_t> buf;
  if (s.augment == Augment::rrc_flip) {
#ifdef PASSLAB_WITHOUT_OPENCV
    require_resize("augment = rrc_flip");
#else
    cv::Mat src(static_cast<int>(s.in_h), static_cast<int>(s.in_w), cv_type(C), const_cast<uint8_t*>(hwc));
    const cv::Rect box = rrc_box(s, static_cast<int>(s.in_h), static_cast<int>(s.in_w), rng);
    buf.resize(static_cast<size_t>(S * S * C));
    cv::Mat dst(static_cast<int>(S), static_cast<int>(S), cv_type(C), buf.data());
    cv::resize(src(box), dst, dst.size(), 0, 0, cv::INTER_LINEAR);
    img = buf.data();
#endif
  } else if (s.in_h != S || s.in_w != S) {
    buf = resize_center_crop(hwc, s.in_h, s.in_w, C, S);
    img = buf.data();
  }
  // 2. Random crop offsets (crop_flip) and flip.
  int64_t dy = 0, dx = 0;
  bool flip = false;
  if (s.augment == Augment::crop_flip) {
    const int64_t p = s.crop_padding;
    dy = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(2 * p + 1))) - p;
    dx = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(2 * p + 1))) - p;
    flip = rng.uniform01() < 0.5;
  } else if (s.augment == Augment::rrc_flip) {
    flip = rng.uniform01() < 0.5;
  }
  // 3. out[c][y][x] = lut_c(img[y+dy][x'+dx][c]) with x' = flipped x; outside the image: zero pixel.
  // A gray image normalised per output channel (L = 3, C = 1) reads its one channel three times.
  const int64_t plane = S * S, L = static_cast<int64_t>(s.lut.size() / 256);
  for (int64_t y = 0; y < S; ++y) {
    const int64_t sy = y + dy;
    const bool row_in = sy >= 0 && sy < S;
    for (int64_t x = 0; x < S; ++x) {
      const int64_t sx = (flip ? S - 1 - x : x) + dx;
      const bool in = row_in && sx >= 0 && sx < S;
      const uint8_t* px = in ? img + (sy * S + sx) * C : nullptr;
      for (int64_t c = 0; c < L; ++c) out[c * plane + y * S + x] = lut[c * 256 + (px ? px[C == 1 ? 0 : c] : 0)];
    }
  }
  if (s.out_c == 3 && L == 1) {
    std::copy(out, out + plane, out + plane);
    std::copy(out, out + plane, out + 2 * plane);
  }
}

}  // namespace passlab::data
