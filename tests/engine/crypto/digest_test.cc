#include "engine/crypto/digest.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/crypto/base64.h"

namespace sigil::crypto {
namespace {

std::string hex(ByteView b) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (uint8_t c : b) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

TEST(Digest, Sha256KnownAnswers) {
  EXPECT_EQ(hex(sha256(as_bytes("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256(as_bytes(""))), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256(as_bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Digest, HmacSha256Rfc4231) {
  // Test case 1.
  const Bytes key1(20, 0x0b);
  EXPECT_EQ(hex(hmac_sha256(key1, as_bytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2.
  EXPECT_EQ(hex(hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: key longer than the block size.
  const Bytes key6(131, 0xaa);
  EXPECT_EQ(hex(hmac_sha256(key6, as_bytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Digest, HmacIsConsistentAcrossThreads) {
  const auto expected = hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        if (hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?")) != expected) ++mismatches[t];
        (void)hmac_sha256(as_bytes("other key"), as_bytes("other data"));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(Digest, HmacAcceptsEmptyKeyAndData) {
  EXPECT_EQ(hex(hmac_sha256({}, {})), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(CtEqual, ComparesContentsAndLengths) {
  EXPECT_TRUE(ct_equal(as_bytes("abc"), as_bytes("abc")));
  EXPECT_FALSE(ct_equal(as_bytes("abc"), as_bytes("abd")));
  EXPECT_FALSE(ct_equal(as_bytes("abc"), as_bytes("ab")));
  EXPECT_FALSE(ct_equal(as_bytes("ab"), as_bytes("abc")));
  EXPECT_TRUE(ct_equal({}, {}));
  EXPECT_FALSE(ct_equal({}, as_bytes("a")));
}

TEST(Random, DigitsHaveTheRequestedLengthAndOnlyDigits) {
  for (size_t n : {0, 1, 6, 8, 40}) {
    const std::string d = random_digits(n);
    EXPECT_EQ(d.size(), n);
    for (char c : d) EXPECT_TRUE(c >= '0' && c <= '9') << d;
  }
  // Every digit shows up in 2000 draws (a miss has probability ~1e-90): catches a broken range.
  std::set<char> seen;
  for (char c : random_digits(2000)) seen.insert(c);
  EXPECT_EQ(seen.size(), 10u);
}

TEST(Random, BytesAndTokensAreFreshAndWellFormed) {
  EXPECT_EQ(random_bytes(0).size(), 0u);
  const Bytes a = random_bytes(32);
  const Bytes b = random_bytes(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  const std::string token = random_token();
  EXPECT_EQ(token.size(), 43u);
  auto decoded = base64url_decode(token);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->size(), 32u);
  EXPECT_NE(random_token(16), random_token(16));
}

TEST(Wipe, ZeroesTheBuffer) {
  Bytes secret = {1, 2, 3, 4, 5};
  wipe(secret);
  EXPECT_EQ(secret, Bytes(5, 0));
  wipe({});  // empty span is a no-op
}

}  // namespace
}  // namespace sigil::crypto
