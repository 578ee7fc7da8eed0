#pragma once
// `passlab prepare`: raw datasets in their usual on-disk formats -> HDF5 image store.
//   fashion-mnist, mnist : IDX files (gzipped or not): train-images-idx3-ubyte[.gz], ...
//   cifar10              : the official binary version (data_batch_1..5.bin, test_batch.bin)
//   cifar100             : the official binary version (train.bin, test.bin; fine labels)
//   imagefolder          : root/{train,test}/<class>/<image> (jpg, png, bmp, ppm, pgm, tif, webp)
// Bad input (truncated or corrupt files, missing directories, empty classes, count mismatches,
// unwritable output) throws DataError/IOError naming the file and the problem; no store is left.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "passlab/data/store.hpp"

namespace passlab::data {

struct PrepareOptions {
  int64_t size = 0;      // output resolution (shorter side to size, centre crop); 0: native
  int64_t threads = 2;   // decode/resize threads
  int64_t channels = 0;  // imagefolder: 1 or 3 (0: 3); IDX and CIFAR keep theirs
  int gzip = 0;          // HDF5 deflate level of the image datasets (0: none)
  bool force = false;    // replace an existing store
  // A derived store (the transfer benchmark, docs/transfer.md), for the in-memory formats (not
  // imagefolder): only these classes, relabelled 0..k-1 in the order given (empty: all), and a
  // domain shift applied to every image of both splits (none, or invert: v -> 255 - v).
  std::vector<int64_t> classes;
  std::string shift = "none";
  // A few-shot training split (downstream sets such as Flowers-102 or DTD have tens of images per
  // class): the first N training images of each class, in the source's order (0: all). The test
  // split is kept whole.
  int64_t train_per_class = 0;
};

const std::vector<std::string>& prepare_formats();
const std::vector<std::string>& prepare_shifts();
// Default source of a format when none is given (Debian's dataset-fashion-mnist for fashion-mnist);
// empty when there is none.
std::filesystem::path default_source(const std::string& format);

StoreInfo prepare(const std::string& format, const std::filesystem::path& source, const std::filesystem::path& out,
                  const PrepareOptions& opt = {});

// Makes a running prepare() stop at its next block with a DataError (no store is left); safe to
// call from a signal handler.
void request_prepare_cancel();

// Parsed IDX file (exposed for tests and tools).
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};
IdxArray read_idx(const std::filesystem::path& path);  // gzip detected by magic bytes

}  // namespace passlab::data
