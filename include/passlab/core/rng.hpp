#pragma once
// Portable seeded random numbers: the same seed gives the same stream with any compiler and
// standard library (std::shuffle and std::*_distribution are implementation-defined, so
// passlab uses neither). Generator: xoshiro256** (Blackman & Vigna), seeded by SplitMix64.
#include <cstdint>
#include <string>
#include <vector>

namespace passlab {

// One step of SplitMix64 (Steele, Lea & Flood): advances `state` and returns the next output.
uint64_t splitmix64_next(uint64_t& state);

// Mixes a seed with stream identifiers (e.g. seed, epoch, rank) into an independent seed.
uint64_t derive_seed(uint64_t seed, uint64_t stream);
uint64_t derive_seed(uint64_t seed, uint64_t stream_a, uint64_t stream_b);

class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next_u64();
  // Uniform integer in [0, bound), unbiased (Lemire's multiply-and-reject). bound > 0.
  uint64_t uniform_below(uint64_t bound);
  // Uniform double in [0, 1) with 53 random bits.
  double uniform01();
  // Standard normal (Box–Muller on uniform01; portable because it uses only std::log/sqrt/cos).
  double normal();

 private:
  uint64_t s_[4];
};

// Fisher–Yates permutation of 0..n-1 driven by Rng(seed).
std::vector<int64_t> permutation(int64_t n, uint64_t seed);

// 64-bit FNV-1a over bytes followed by a SplitMix64 finaliser (good avalanche for short ids).
uint64_t hash64(const void* data, size_t size);
// Lower-case hex of the top `digits` nibbles of h (digits <= 16).
std::string hex_digest(uint64_t h, int digits);

}  // namespace passlab
