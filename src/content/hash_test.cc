#include <gtest/gtest.h>

#include <string>

#include "content/content.h"

namespace pkgcast::content {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256("").hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256("abc").hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 7 + i / 13));
  Sha256 h;
  const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
  h.update({p, 1});
  h.update({p + 1, 4095});
  h.update({p + 4096, data.size() - 4096});
  EXPECT_EQ(h.finish(), sha256(data));
}

TEST(Digest, HexRoundTrip) {
  const Digest d = sha256("x");
  EXPECT_EQ(Digest::from_hex(d.hex()), d);
  std::string upper = d.hex();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(Digest::from_hex(upper), d);
  EXPECT_FALSE(Digest::from_hex(d.hex().substr(1)));
  EXPECT_FALSE(Digest::from_hex(d.hex() + "0"));
  EXPECT_FALSE(Digest::from_hex(std::string(63, '0') + "g"));
}

}  // namespace
}  // namespace pkgcast::content
