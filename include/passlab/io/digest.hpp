#pragma once
// Content digests of passlab's HDF5 files: the one hash (FNV-1a 64) behind a store's `checksum`
// and a result file's `digest`, and the canonical walk that turns a file's content into bytes.
//
// The digest of a file covers every group, dataset and attribute but the root attribute
// `digest` itself, independent of how HDF5 laid them out on disk. The byte stream (mirrored by
// analysis/integrity.py, which must produce the same value):
//   objects depth first from "/", the children of a group sorted by name (bytewise);
//   a group:     "G" <path> NUL, then its attributes;
//   a dataset:   "D" <path> NUL <value header> <values>, then its attributes;
//   an attribute (sorted by name): "A" <name> NUL <value header> <values>;
//   value header: <type tag> NUL, rank as u64, each extent as u64 (a scalar has rank 0);
//   type tags and values: u1 i4 i8 f4 f8 (also u2 u4 u8 i1 i2): the elements little-endian in
//   that width; "s": each string as u64 length and its bytes (fixed-length strings end at NUL).
// All integers of the stream are little-endian.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace passlab::io {

class File;
class Group;

// Root attribute holding a file's digest: "fnv1a64:<16 hex>".
inline constexpr char kDigestAttr[] = "digest";

// Streaming FNV-1a 64 over bytes, in order.
class ContentHash {
 public:
  void update(const void* data, size_t size);
  uint64_t value() const { return h_; }
  std::string hex() const;  // "fnv1a64:<16 hex>"

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

// One walk over a file's content: its digest and the floating-point entries holding a
// non-finite value (NaN, ±inf), named "/weights/conv1.weight" or "/summary@top1".
struct ContentScan {
  std::string digest;
  std::vector<std::string> non_finite;
};
// Reads every dataset (in blocks of rows, so a store's images need not fit in memory) and
// attribute. IOError when HDF5 cannot read something or a type is none passlab writes.
ContentScan scan_content(const File& f);

// Computes the digest and stores it as the root attribute `digest` (replacing an old one).
std::string write_digest(File& f);

}  // namespace passlab::io
