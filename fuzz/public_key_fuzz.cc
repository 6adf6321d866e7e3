// Fuzz target for public-key parsing (engine/crypto/public_key.h): SPKI DER, PKCS#1 RSAPublicKey DER and
// raw X9.62 P-256 points, all four entry points over the same input.
//
// Properties:
//  - every error carries ts_error_code auth_invalid_key_encoding or auth_invalid_key_type;
//  - a parsed key's spki_der() is canonical: it parses again (as SPKI) to the same spki_der, type and bits;
//  - from_spki_der accepts no trailing bytes and no alternative DER: on success the input IS spki_der(),
//    except an EC key given with a compressed (02/03) or hybrid (06/07) point, which the canonical form
//    stores uncompressed (public_key.cc, from_owned_pkey) — then the X coordinate must be the same;
//  - from_pkcs1_rsa_der only yields RSA keys, from_x962_p256 only P-256 keys whose SPKI ends in the point;
//  - parse_any agrees with the first parser that accepts the input;
//  - verify() with a garbage signature (the input itself, or zeros of the expected size) is false.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/crypto/public_key.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::Bytes;
using sigil::ByteView;
using sigil::Result;
using sigil::crypto::KeyType;
using sigil::crypto::PublicKey;

constexpr std::string_view kMessage = "sigil fuzz: a message nobody signed";
// SPKI of a named-curve P-256 key: 30 L 30 13 <ecPublicKey OID> <prime256v1 OID> 03 L 00 <point>.
constexpr size_t kP256SpkiPointOffset = 26;

bool equal(ByteView a, ByteView b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

void check_error(const Result<PublicKey>& r) {
  if (r) return;
  const auto& ts = r.error().ts_error_code;
  FUZZ_CHECK(ts == "auth_invalid_key_encoding" || ts == "auth_invalid_key_type",
             "key parse error without a key ts_error_code");
  FUZZ_CHECK(r.error().status() == 400, "key parse error is not a 400");
}

void check_key(const PublicKey& key, ByteView input) {
  FUZZ_CHECK(key.type() == KeyType::kEcP256 || key.type() == KeyType::kRsa, "unknown key type");
  if (key.type() == KeyType::kEcP256) FUZZ_CHECK(key.bits() == 256, "P-256 key without 256 bits");
  if (key.type() == KeyType::kRsa) FUZZ_CHECK(key.bits() >= 2048 && key.bits() <= 4096, "RSA size out of range");

  // Canonical form is a fixed point.
  const Bytes& spki = key.spki_der();
  auto again = PublicKey::from_spki_der(spki);
  FUZZ_CHECK(again.has_value(), "spki_der() of a parsed key does not parse");
  FUZZ_CHECK(again->spki_der() == spki, "spki_der() is not idempotent");
  FUZZ_CHECK(again->type() == key.type() && again->bits() == key.bits(), "re-parsed key differs");
  auto any = PublicKey::parse_any(spki);
  FUZZ_CHECK(any.has_value() && any->spki_der() == spki, "parse_any(spki_der()) differs");

  // Garbage signatures never verify.
  FUZZ_CHECK(!key.verify(sigil::as_bytes(kMessage), input), "the key's own encoding verified as a signature");
  const Bytes zeros(key.type() == KeyType::kRsa ? static_cast<size_t>(key.bits() + 7) / 8 : 72, 0);
  FUZZ_CHECK(!key.verify(sigil::as_bytes(kMessage), zeros), "an all-zero signature verified");
  FUZZ_CHECK(!key.verify(sigil::as_bytes(kMessage), {}), "an empty signature verified");
  FUZZ_CHECK(!key.verify_digest(ByteView(spki).first(std::min<size_t>(spki.size(), 31)), input),
             "verify_digest accepted a digest that is not 32 bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView input(data, size);

  auto spki = PublicKey::from_spki_der(input);
  check_error(spki);
  if (spki) {
    check_key(*spki, input);
    if (!equal(spki->spki_der(), input)) {
      // Only a compressed or hybrid EC point may be re-spelled, and only into the uncompressed point.
      const Bytes& canon = spki->spki_der();
      FUZZ_CHECK(spki->type() == KeyType::kEcP256, "from_spki_der accepted a non-canonical RSA SPKI");
      FUZZ_CHECK(size > kP256SpkiPointOffset + 32 && canon.size() == kP256SpkiPointOffset + 65,
                 "from_spki_der accepted a non-canonical EC SPKI of unexpected shape");
      const uint8_t form = input[kP256SpkiPointOffset];
      FUZZ_CHECK(form == 0x02 || form == 0x03 || form == 0x06 || form == 0x07,
                 "from_spki_der accepted a non-canonical SPKI that is not a compressed/hybrid point");
      FUZZ_CHECK(canon[kP256SpkiPointOffset] == 0x04, "canonical SPKI point is not uncompressed");
      FUZZ_CHECK(std::equal(canon.begin() + kP256SpkiPointOffset + 1, canon.begin() + kP256SpkiPointOffset + 33,
                            input.begin() + kP256SpkiPointOffset + 1),
                 "canonical SPKI has another X coordinate than the input");
    }
  }

  auto pkcs1 = PublicKey::from_pkcs1_rsa_der(input);
  check_error(pkcs1);
  if (pkcs1) {
    check_key(*pkcs1, input);
    FUZZ_CHECK(pkcs1->type() == KeyType::kRsa, "from_pkcs1_rsa_der returned a non-RSA key");
  }

  auto point = PublicKey::from_x962_p256(input);
  check_error(point);
  if (point) {
    check_key(*point, input);
    FUZZ_CHECK(point->type() == KeyType::kEcP256, "from_x962_p256 returned a non-EC key");
    FUZZ_CHECK(size == 65 && input[0] == 0x04, "from_x962_p256 accepted something other than 04||X||Y");
    const Bytes& canon = point->spki_der();
    FUZZ_CHECK(canon.size() >= 65 && std::equal(canon.end() - 65, canon.end(), input.begin()),
               "SPKI of a raw point does not end in that point");
  }

  auto any = PublicKey::parse_any(input);
  check_error(any);
  if (any) {
    check_key(*any, input);
    const Result<PublicKey>* first = spki ? &spki : pkcs1 ? &pkcs1 : point ? &point : nullptr;
    FUZZ_CHECK(first != nullptr, "parse_any accepted what no single parser accepts");
    FUZZ_CHECK((*first)->spki_der() == any->spki_der(), "parse_any differs from the parser that accepts");
  } else {
    // parse_any may only fail where every parser fails (an unsupported-type error stops it early).
    FUZZ_CHECK(!spki, "parse_any failed where from_spki_der succeeded");
    if (any.error().ts_error_code != "auth_invalid_key_type") {
      FUZZ_CHECK(!pkcs1 && !point, "parse_any failed where another parser succeeded");
    }
  }
  return 0;
}
