#pragma once
// Tiny datasets with known pixels, written by the tests in the raw formats prepare reads.
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#ifndef PASSLAB_WITHOUT_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif
#include <iterator>
#include <stdexcept>
#include <tuple>
#include <string>
#include <vector>

// Tests that need OpenCV (image files, resizing) skip themselves in a build without it
// (PASSLAB_WITH_OPENCV=OFF, or AUTO where OpenCV is absent); tests of the errors replace them.
#ifdef PASSLAB_WITHOUT_OPENCV
#define PASSLAB_SKIP_WITHOUT_OPENCV() GTEST_SKIP() << "built without OpenCV (image decoding and resizing)"
#else
#define PASSLAB_SKIP_WITHOUT_OPENCV() static_cast<void>(0)
#endif

namespace passlab::test {

#ifdef PASSLAB_WITHOUT_OPENCV
inline constexpr bool kHaveOpenCV = false;
#else
inline constexpr bool kHaveOpenCV = true;
#endif

// Known pixel value of image i at (y, x, channel c).
inline uint8_t known_pixel(int64_t i, int64_t y, int64_t x, int64_t c) {
  return static_cast<uint8_t>((i * 31 + y * 7 + x * 3 + c * 50) & 255);
}

inline std::vector<uint8_t> known_images(int64_t n, int64_t h, int64_t w, int64_t c, int64_t first = 0) {
  std::vector<uint8_t> v(static_cast<size_t>(n * h * w * c));
  size_t k = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t ch = 0; ch < c; ++ch) v[k++] = known_pixel(first + i, y, x, ch);
  return v;
}

inline void write_bytes(const std::filesystem::path& p, const std::vector<uint8_t>& b, bool gzip = false) {
  if (gzip) {
    gzFile f = gzopen(p.c_str(), "wb");
    if (!f) throw std::runtime_error("gzopen " + p.string());
    if (!b.empty()) gzwrite(f, b.data(), static_cast<unsigned>(b.size()));
    gzclose(f);
    return;
  }
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!out) throw std::runtime_error("write " + p.string());
}

inline std::vector<uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// IDX bytes: magic 0x0000 08 nd, big-endian dims, data.
inline std::vector<uint8_t> idx_bytes(const std::vector<int64_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (int64_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>((d >> s) & 255));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// An MNIST-style directory: n_train/n_test images of h x w, label i % 10.
inline void write_idx_dataset(const std::filesystem::path& dir, int64_t n_train, int64_t n_test, int64_t h, int64_t w, bool gzip) {
  std::filesystem::create_directories(dir);
  const std::string gz = gzip ? ".gz" : "";
  for (auto [prefix, n, first] : {std::tuple{"train", n_train, int64_t{0}}, std::tuple{"t10k", n_test, int64_t{1000}}}) {
    std::vector<uint8_t> labels;
    for (int64_t i = 0; i < n; ++i) labels.push_back(static_cast<uint8_t>((first + i) % 10));
    write_bytes(dir / (std::string(prefix) + "-images-idx3-ubyte" + gz), idx_bytes({n, h, w}, known_images(n, h, w, 1, first)), gzip);
    write_bytes(dir / (std::string(prefix) + "-labels-idx1-ubyte" + gz), idx_bytes({n}, labels), gzip);
  }
}

// CIFAR binary records for images [first, first + n): label bytes then R, G, B planes.
inline std::vector<uint8_t> cifar_bytes(int64_t n, int64_t first, int label_bytes, int64_t ncls) {
  std::vector<uint8_t> b;
  for (int64_t i = first; i < first + n; ++i) {
    if (label_bytes == 2) b.push_back(static_cast<uint8_t>(i % 20));  // coarse
    b.push_back(static_cast<uint8_t>(i % ncls));
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) b.push_back(known_pixel(i, y, x, c));
  }
  return b;
}

#ifndef PASSLAB_WITHOUT_OPENCV
// Writes an HWC RGB (or gray) image with OpenCV (which wants BGR).
inline void write_image(const std::filesystem::path& p, const std::vector<uint8_t>& hwc, int h, int w, int c,
                        const std::vector<int>& params = {}) {
  cv::Mat m(h, w, c == 1 ? CV_8UC1 : CV_8UC3, const_cast<uint8_t*>(hwc.data()));
  cv::Mat out;
  if (c == 3)
    cv::cvtColor(m, out, cv::COLOR_RGB2BGR);
  else
    out = m;
  if (!cv::imwrite(p.string(), out, params)) throw std::runtime_error("imwrite " + p.string());
}
#endif

}  // namespace passlab::test
