// Wycheproof known-answer tests for CoseKey::verify (ES384, EdDSA/Ed25519, PS256), read from
// SIGIL_VECTORS_DIR "/wycheproof/" (never copied into the repo). See docs/VECTORS.md.
//
// Policy for results:
//  - "valid" must verify and "invalid" must fail, in every file.
//  - "acceptable": none of the three files has any (v1 vectors). Were one to appear, our policy is to accept
//    only the single canonical form, so an acceptable case must FAIL; the test asserts that and prints the count.
//  - Keys: ES384 and PS256 groups load "publicKeyDer" (SPKI) through CoseKey::from_spki(der, alg), the path
//    attestation certificates take; Ed25519 groups build a COSE OKP key from "publicKey.pk" and go through
//    CoseKey::decode, the path credential keys take. A group whose key our policy refuses (Ed25519 of small
//    order, point off the curve, RSA outside 2048..4096 bits, ...) is counted as "refused" with its tests,
//    printed, and must match kExpectedRefusedGroups for its file (0 today): nothing is skipped silently.
//  - Ed25519 verification is libsodium's crypto_sign_verify_detached: non-canonical S, small-order R and
//    signatures of any length other than 64 bytes are refused.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "engine/crypto/cose_key.h"

namespace sigil::crypto {
namespace {

std::optional<Bytes> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<uint8_t>(hi * 16 + lo));
  }
  return out;
}

// {1: 1 (OKP), 3: -8 (EdDSA), -1: 6 (Ed25519), -2: h'<32 bytes>'} in CTAP2 canonical order.
Bytes ed25519_cose(ByteView pk) {
  Bytes out = {0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, static_cast<uint8_t>(pk.size())};
  out.insert(out.end(), pk.begin(), pk.end());
  return out;
}

enum class KeySource { kSpki, kEd25519Cose };

struct Tally {
  size_t total = 0, declared = 0;
  size_t valid = 0, valid_ok = 0;
  size_t invalid = 0, invalid_ok = 0;
  size_t acceptable = 0, acceptable_rejected = 0;
  size_t refused_groups = 0, refused_tests = 0;
};

void run_file(const char* name, KeySource source, int64_t alg, size_t expected_refused_groups, Tally& t) {
  const std::string path = std::string(SIGIL_VECTORS_DIR) + "/wycheproof/" + name;
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "Wycheproof vectors not found at " << path;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.load(path).get(root), simdjson::SUCCESS) << path;
  int64_t declared = 0;
  ASSERT_EQ(root["numberOfTests"].get(declared), simdjson::SUCCESS);
  t.declared = static_cast<size_t>(declared);
  simdjson::dom::array groups;
  ASSERT_EQ(root["testGroups"].get(groups), simdjson::SUCCESS);
  for (simdjson::dom::element group : groups) {
    Result<CoseKey> key = invalid_argument("no key");
    if (source == KeySource::kSpki) {
      std::string_view der_hex;
      ASSERT_EQ(group["publicKeyDer"].get(der_hex), simdjson::SUCCESS);
      auto der = from_hex(der_hex);
      ASSERT_TRUE(der);
      key = CoseKey::from_spki(*der, alg);
    } else {
      std::string_view pk_hex;
      ASSERT_EQ(group["publicKey"]["pk"].get(pk_hex), simdjson::SUCCESS);
      auto pk = from_hex(pk_hex);
      ASSERT_TRUE(pk && pk->size() == 32);
      key = CoseKey::decode(ed25519_cose(*pk));
    }
    simdjson::dom::array tests;
    ASSERT_EQ(group["tests"].get(tests), simdjson::SUCCESS);
    if (!key) {
      ++t.refused_groups;
      std::printf("[wycheproof] %s: group key refused (%s: %s), %zu tests not run\n", name,
                  key.error().ts_error_code.c_str(), key.error().message.c_str(), tests.size());
      t.refused_tests += tests.size();
      t.total += tests.size();
      continue;
    }
    ASSERT_EQ(key->alg(), alg);
    for (simdjson::dom::element test : tests) {
      int64_t tc_id = 0;
      std::string_view msg_hex, sig_hex, result;
      ASSERT_EQ(test["tcId"].get(tc_id), simdjson::SUCCESS);
      ASSERT_EQ(test["msg"].get(msg_hex), simdjson::SUCCESS);
      ASSERT_EQ(test["sig"].get(sig_hex), simdjson::SUCCESS);
      ASSERT_EQ(test["result"].get(result), simdjson::SUCCESS);
      auto msg = from_hex(msg_hex);
      auto sig = from_hex(sig_hex);
      ASSERT_TRUE(msg && sig) << "tcId " << tc_id;
      const bool verified = key->verify(*msg, *sig);
      ++t.total;
      if (result == "valid") {
        ++t.valid;
        t.valid_ok += verified;
        EXPECT_TRUE(verified) << name << " tcId " << tc_id << " (valid) did not verify";
      } else if (result == "invalid") {
        ++t.invalid;
        t.invalid_ok += !verified;
        EXPECT_FALSE(verified) << name << " tcId " << tc_id << " (invalid) verified";
      } else {
        ASSERT_EQ(result, "acceptable");
        ++t.acceptable;
        t.acceptable_rejected += !verified;
        EXPECT_FALSE(verified) << name << " tcId " << tc_id << " (acceptable) verified; policy is to reject";
      }
    }
  }
  std::printf(
      "[wycheproof] %s: %zu/%zu passed (%zu tests run); valid %zu/%zu verified; invalid %zu/%zu rejected; "
      "acceptable %zu/%zu rejected by policy; refused key groups %zu (%zu tests)\n",
      name, t.valid_ok + t.invalid_ok + t.acceptable_rejected, t.declared, t.total - t.refused_tests, t.valid_ok,
      t.valid, t.invalid_ok, t.invalid, t.acceptable_rejected, t.acceptable, t.refused_groups, t.refused_tests);
  EXPECT_EQ(t.total, t.declared) << "every declared test must be accounted for";
  EXPECT_EQ(t.refused_groups, expected_refused_groups);
}

TEST(WycheproofCose, EcdsaP384Sha384DerVectorsThroughFromSpki) {
  Tally t;
  run_file("ecdsa_secp384r1_sha384_test.json", KeySource::kSpki, cose_alg::kES384, 0, t);
  if (IsSkipped()) return;
  EXPECT_EQ(t.valid_ok, t.valid);
  EXPECT_EQ(t.invalid_ok, t.invalid);
  EXPECT_EQ(t.acceptable, 0u);
  EXPECT_GT(t.valid, 0u);
}

TEST(WycheproofCose, Ed25519VectorsThroughCoseOkpKeys) {
  Tally t;
  run_file("ed25519_test.json", KeySource::kEd25519Cose, cose_alg::kEdDSA, 0, t);
  if (IsSkipped()) return;
  EXPECT_EQ(t.valid_ok, t.valid);
  EXPECT_EQ(t.invalid_ok, t.invalid);
  EXPECT_EQ(t.acceptable, 0u);
  EXPECT_GT(t.valid, 0u);
}

TEST(WycheproofCose, RsaPssSha256Mgf1Salt32VectorsThroughFromSpki) {
  Tally t;
  run_file("rsa_pss_2048_sha256_mgf1_32_test.json", KeySource::kSpki, cose_alg::kPS256, 0, t);
  if (IsSkipped()) return;
  EXPECT_EQ(t.valid_ok, t.valid);
  EXPECT_EQ(t.invalid_ok, t.invalid);
  EXPECT_EQ(t.acceptable, 0u);
  EXPECT_GT(t.valid, 0u);
}

}  // namespace
}  // namespace sigil::crypto
