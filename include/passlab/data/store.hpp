#pragma once
// HDF5 image stores (DESIGN.md §4), written by `passlab prepare`, read by the loader.
//
// Layout of one store:
//   /train/images  uint8 [N,H,W,C]  chunked per batch of images (~512 KiB chunks)
//   /train/labels  int64 [N]
//   /test/images, /test/labels      the same for the test split
//   root attributes: status ("complete", set last), format_version, format (fashion-mnist, cifar10,
//   imagefolder, ...), source, classes (1-d string array), mean and std (1-d float64 [C], train
//   pixels in [0,1]), height, width, channels, num_classes, checksum ("fnv1a64:<hex>" over train
//   images, train labels, test images, test labels, in that order; io::ContentHash), digest (the
//   content digest of io/digest.hpp over everything; stores written before digests have none).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "passlab/io/hdf5.hpp"

namespace passlab::data {

inline constexpr int64_t kStoreFormatVersion = 1;

// What describes a store apart from its pixels.
struct StoreInfo {
  std::filesystem::path path;
  std::string format;   // e.g. "fashion-mnist", "cifar10", "imagefolder"
  std::string source;   // where prepare read it from
  std::vector<std::string> classes;
  std::vector<double> mean, std;  // per channel, of the train images in [0,1]
  int64_t height = 0, width = 0, channels = 0;
  std::string checksum;  // "fnv1a64:<16 hex>"
  int64_t train_size = 0, test_size = 0;
  int64_t num_classes() const { return static_cast<int64_t>(classes.size()); }
  int64_t image_bytes() const { return height * width * channels; }
};

// Writes a store through io::AtomicWriter: splits are written one after the other ("train" first,
// then "test"), in row order, so that mean/std and the checksum stream. Nothing is visible under
// the final path before commit(); a writer destroyed uncommitted leaves no file behind.
class StoreWriter {
 public:
  struct Meta {
    std::string format, source;
    std::vector<std::string> classes;
    int64_t height = 0, width = 0, channels = 0;
    int gzip = 0;  // 0: uncompressed (fastest random reads)
  };
  StoreWriter(const std::filesystem::path& out, Meta meta);
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Starts split `name` ("train" or "test") with `rows` images.
  void begin_split(const std::string& name, int64_t rows);
  // Appends `count` rows (images HWC uint8, labels); labels must be in [0, num_classes).
  void write(int64_t count, const uint8_t* images, const int64_t* labels);
  // Writes mean/std/checksum attributes, marks the store complete and renames it into place.
  StoreInfo commit();

 private:
  void end_split();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A read-only, validated store. Thread-safe: reads from several loader threads are serialised.
class Store {
 public:
  // Opens `path` (io::open_complete) and validates the schema; throws DataError naming the file
  // and the problem (missing dataset, wrong dtype or shape, labels out of range, mean or std
  // not finite or outside their range, ...), IOError when the file is missing, not HDF5 or
  // incomplete. A store of at most kVerifyOnOpenBytes of images is also verified (verify()),
  // once per process and file version: DataError when its content changed after prepare wrote it.
  static std::shared_ptr<Store> open(const std::filesystem::path& path);

  const StoreInfo& info() const { return info_; }
  // Rows of a raw split: "train" or "test".
  int64_t rows(const std::string& split) const;
  const std::vector<int64_t>& labels(const std::string& split) const;
  // Reads rows [start, start+count) of split's images into out (count * image_bytes()).
  void read_images(const std::string& split, int64_t start, int64_t count, uint8_t* out) const;
  // Recomputes the content checksum from the stored data (reads the whole store).
  std::string compute_checksum() const;
  // What differs from what prepare wrote: the content digest when the store has one (everything
  // in it), else the checksum (images and labels). Empty: intact. Reads the whole store.
  std::vector<std::string> verify() const;

 private:
  Store() = default;
  struct SplitData {
    std::unique_ptr<io::Dataset> images;
    std::vector<int64_t> labels;
  };
  const SplitData& split(const std::string& name) const;
  StoreInfo info_;
  std::unique_ptr<io::File> file_;
  SplitData train_, test_;
  mutable std::mutex mutex_;
};

// Stores verified on every open (Store::open); larger ones by `passlab inspect --check` only.
inline constexpr int64_t kVerifyOnOpenBytes = int64_t{1} << 30;

// Whether an open HDF5 file is an image store (rather than a result file).
bool is_store(const io::File& f);
// `passlab inspect --check` of a store: every problem Store::open finds, then every difference
// of verify() and of the checksum (both, whatever the size). Empty: the store is intact.
std::vector<std::string> check_store(const std::filesystem::path& path);

// Helpers shared by prepare and tests: array attributes (HDF5 1-d attributes).
void set_string_array_attr(io::Group& g, const std::string& name, const std::vector<std::string>& values);
std::vector<std::string> get_string_array_attr(const io::Group& g, const std::string& name);
void set_double_array_attr(io::Group& g, const std::string& name, const std::vector<double>& values);
std::vector<double> get_double_array_attr(const io::Group& g, const std::string& name);

}  // namespace passlab::data
