// Fuzz target for COSE_Key parsing (engine/crypto/cose_key.h): CoseKey::decode over the input.
//
// Properties:
//  - every error is kInvalidArgument with ts_error_code auth_invalid_key_encoding or auth_invalid_key_type;
//  - decode() success ⇒ the input is exactly one CBOR map (cbor::decode) and CoseKey::parse of that map
//    gives the same key; cose_bytes() is the input; alg() is one of the supported COSE algorithms and fits
//    the map's kty (1) label; spki_der() is non-empty;
//  - the SPKI round-trips for every algorithm (EdDSA included: from_spki runs the same key checks):
//    from_spki(spki_der(), alg()) succeeds with the same spki_der and alg and empty cose_bytes(); asking
//    from_spki for an algorithm of another key family fails with auth_invalid_key_type;
//  - verify() of a garbage 64-byte signature, of the input itself and of an empty signature over a fixed
//    message is false, for both the decoded key and the one from_spki built.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/cbor/cbor.h"
#include "engine/crypto/cose_key.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::Bytes;
using sigil::ByteView;
using sigil::Result;
using sigil::crypto::CoseKey;
namespace alg = sigil::crypto::cose_alg;

constexpr std::string_view kMessage = "sigil cose_key fuzz: a message nobody signed";

bool equal(ByteView a, ByteView b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

void check_error(const sigil::Error& e) {
  FUZZ_CHECK(e.code == sigil::ErrorCode::kInvalidArgument, "COSE key error is not kInvalidArgument");
  FUZZ_CHECK(e.ts_error_code == "auth_invalid_key_encoding" || e.ts_error_code == "auth_invalid_key_type",
             "COSE key error without a key ts_error_code");
}

enum class Family { kEc2, kOkp, kRsa, kNone };

Family family_of(int64_t a) {
  switch (a) {
    case alg::kES256:
    case alg::kES384:
    case alg::kES512: return Family::kEc2;
    case alg::kEdDSA:
    case alg::kEd25519:
    case alg::kEd448: return Family::kOkp;
    case alg::kRS256:
    case alg::kPS256:
    case alg::kRS1: return Family::kRsa;
    default: return Family::kNone;
  }
}

void check_no_garbage_verifies(const CoseKey& key, ByteView input) {
  Bytes garbage(64);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(0xa5 ^ (i * 7));
  FUZZ_CHECK(!key.verify(sigil::as_bytes(kMessage), garbage), "a garbage 64-byte signature verified");
  FUZZ_CHECK(!key.verify(sigil::as_bytes(kMessage), input), "the key's own encoding verified as a signature");
  FUZZ_CHECK(!key.verify(sigil::as_bytes(kMessage), {}), "an empty signature verified");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView input(data, size);

  auto key = CoseKey::decode(input);
  if (!key) {
    check_error(key.error());
    return 0;
  }

  // One CBOR map, and parse() of it agrees.
  auto map = sigil::cbor::decode(input);
  FUZZ_CHECK(map.has_value() && map->type() == sigil::cbor::Value::Type::kMap,
             "CoseKey::decode accepted an input that is not exactly one CBOR map");
  auto parsed = CoseKey::parse(*map);
  FUZZ_CHECK(parsed.has_value() && parsed->alg() == key->alg() && parsed->spki_der() == key->spki_der(),
             "CoseKey::parse of the decoded map differs from CoseKey::decode");

  FUZZ_CHECK(equal(key->cose_bytes(), input), "cose_bytes() is not the input");
  FUZZ_CHECK(!key->spki_der().empty(), "spki_der() is empty");
  const Family fam = family_of(key->alg());
  FUZZ_CHECK(fam != Family::kNone, "a key with an unsupported algorithm decoded");
  const sigil::cbor::Value* kty = map->find(int64_t{1});
  FUZZ_CHECK(kty != nullptr && kty->as_int().has_value(), "a key without an integer kty decoded");
  const int64_t kty_v = *kty->as_int();
  FUZZ_CHECK((fam == Family::kOkp && kty_v == 1) || (fam == Family::kEc2 && kty_v == 2) ||
                 (fam == Family::kRsa && kty_v == 3),
             "the key's alg does not fit its kty");

  // SPKI round trip, for every algorithm.
  auto from_spki = CoseKey::from_spki(key->spki_der(), key->alg());
  FUZZ_CHECK(from_spki.has_value(), "from_spki(spki_der(), alg()) of a decoded key fails");
  FUZZ_CHECK(from_spki->spki_der() == key->spki_der(), "from_spki gives another spki_der");
  FUZZ_CHECK(from_spki->alg() == key->alg(), "from_spki gives another alg");
  FUZZ_CHECK(from_spki->cose_bytes().empty(), "a key made by from_spki has cose_bytes");

  // Another family's algorithm never fits the key.
  const int64_t other = fam == Family::kEc2 ? alg::kRS256 : fam == Family::kRsa ? alg::kEdDSA : alg::kES256;
  auto wrong = CoseKey::from_spki(key->spki_der(), other);
  FUZZ_CHECK(!wrong.has_value(), "from_spki accepted a key for another family's algorithm");
  FUZZ_CHECK(wrong.error().ts_error_code == "auth_invalid_key_type", "algorithm mismatch is not a key type error");

  check_no_garbage_verifies(*key, input);
  check_no_garbage_verifies(*from_spki, input);
  return 0;
}
