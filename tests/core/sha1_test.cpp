#include "prodsafe/core/sha1.hpp"

#include <string>

#include <gtest/gtest.h>

namespace prodsafe {
namespace {

struct Vector {
  std::string input;
  const char* digest;
};

// FIPS 180-2 test vectors, and lengths around the padding boundaries (55, 56,
// 63, 64 bytes), checked against sha1sum.
TEST(Sha1Test, KnownVectors) {
  const Vector vectors[] = {
      {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
      {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
      {std::string(1000000, 'a'), "34aa973cd4c4daa4f61eeb2bdbad27316534016f"},
      {std::string(55, 'x'), "cef734ba81a024479e09eb5a75b6ddae62e6abf1"},
      {std::string(56, 'x'), "901305367c259952f4e7af8323f480d59f81335b"},
      {std::string(63, 'x'), "0ddc4e0cccd9a12850deb5abb0853a4425559fec"},
      {std::string(64, 'x'), "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"},
  };
  for (const Vector& vector : vectors) {
    EXPECT_EQ(sha1_hex(vector.input), vector.digest)
        << "input of " << vector.input.size() << " bytes";
  }
}

}  // namespace
}  // namespace prodsafe
