// Fuzz target for registration verification (engine/webauthn/webauthn.h, verify_registration): the whole
// §7.1 path, attestation statements (none, packed, fido-u2f, tpm, android-key, apple) included.
//
// Input: 2 bytes big-endian N, then clientDataJSON (the next N bytes, fewer when the input is shorter),
// then the attestationObject (the rest). Two bytes rather than one because clientDataJSON is over 255
// bytes in real registrations (the spec's packed-es512 vector: 383). RelyingParty example.org /
// https://example.org, TrustPolicy kNone, now = 2026-01-01.
//
// Properties:
//  A. with a fixed expected challenge (one no seed carries): success ⇒ the clientDataJSON's challenge is
//     that challenge (client_data.challenge and an independent parse_client_data agree);
//  B. with the clientDataJSON's own challenge as the expected one (so the attestation statement is reached
//     for every registration-shaped input): success ⇒ the verified fields are those of the input — fmt;
//     credential id, COSE key, aaguid, sign count and flags of the authData inside the attestationObject;
//     the key's alg was offered; rpIdHash = SHA-256("example.org"); UP set; type webauthn.create; origin
//     https://example.org; attestation type one of none/self/basic/attca/anonca; trusted false (no anchors);
//     and the same input with one bit of the expected challenge flipped fails;
//  every failure is kInvalidArgument with ts_error_code auth_invalid_attestation.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/cbor/cbor.h"
#include "engine/crypto/cose_key.h"
#include "engine/crypto/digest.h"
#include "engine/webauthn/webauthn.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::Bytes;
using sigil::ByteView;
namespace wa = sigil::webauthn;
namespace alg = sigil::crypto::cose_alg;

constexpr int64_t kNow = 1767225600;  // 2026-01-01

const Bytes& fixed_challenge() {
  static const Bytes c = [] {
    const auto d = sigil::crypto::sha256(sigil::as_bytes("sigil attestation_fuzz: the expected challenge"));
    return Bytes(d.begin(), d.end());
  }();
  return c;
}

const wa::RelyingParty& rp() {
  static const wa::RelyingParty r = [] {
    wa::RelyingParty x;
    x.rp_id = "example.org";
    x.origins = {"https://example.org"};
    return x;
  }();
  return r;
}

const std::vector<int64_t>& offered_algs() {
  static const std::vector<int64_t> a = {alg::kES256, alg::kEdDSA, alg::kES384, alg::kES512,
                                         alg::kPS256, alg::kRS256, alg::kEd448};
  return a;
}

wa::RegistrationInput make_input(ByteView cdj, ByteView att, ByteView challenge, const wa::TrustPolicy& trust) {
  wa::RegistrationInput in;
  in.client_data_json = cdj;
  in.attestation_object = att;
  in.expected_challenge = challenge;
  in.rp = &rp();
  in.trust = &trust;
  in.now_s = kNow;
  in.allowed_algs = offered_algs();
  return in;
}

void check_failure(const sigil::Error& e) {
  FUZZ_CHECK(e.code == sigil::ErrorCode::kInvalidArgument, "registration failure is not kInvalidArgument");
  FUZZ_CHECK(e.ts_error_code == "auth_invalid_attestation", "registration failure without auth_invalid_attestation");
}

// Success ⇒ what was verified is what the input holds.
void check_verified(const wa::VerifiedRegistration& v, ByteView cdj, ByteView att, ByteView challenge) {
  FUZZ_CHECK(std::equal(v.client_data.challenge.begin(), v.client_data.challenge.end(), challenge.begin(),
                        challenge.end()),
             "verified challenge is not the expected one");
  auto cd = wa::parse_client_data(cdj);
  FUZZ_CHECK(cd.has_value() && cd->challenge == v.client_data.challenge, "clientDataJSON holds another challenge");
  FUZZ_CHECK(v.client_data.type == "webauthn.create", "verified registration of type other than webauthn.create");
  FUZZ_CHECK(v.client_data.origin == "https://example.org", "verified registration from another origin");
  FUZZ_CHECK(!v.client_data.cross_origin && v.client_data.top_origin.empty(),
             "cross-origin registration verified although cross-origin use is not allowed");

  sigil::cbor::Limits limits;
  limits.max_depth = 4;
  auto obj = sigil::cbor::decode(att, limits);
  FUZZ_CHECK(obj.has_value(), "verified attestationObject is not CBOR");
  const sigil::cbor::Value* fmt = obj->find("fmt");
  const sigil::cbor::Value* auth_data = obj->find("authData");
  FUZZ_CHECK(fmt != nullptr && fmt->text() == v.fmt, "verified fmt is not the attestationObject's");
  FUZZ_CHECK(auth_data != nullptr, "verified attestationObject without authData");
  auto ad = wa::parse_authenticator_data(auth_data->bytes());
  FUZZ_CHECK(ad.has_value() && ad->attested.has_value(), "verified authData does not parse with attested data");
  const auto rp_hash = sigil::crypto::sha256(sigil::as_bytes("example.org"));
  FUZZ_CHECK(std::equal(rp_hash.begin(), rp_hash.end(), ad->rp_id_hash.begin()), "verified rpIdHash is not example.org's");
  FUZZ_CHECK((ad->flags & wa::kFlagUP) != 0, "registration verified without UP");
  FUZZ_CHECK(ad->flags == v.flags && ad->sign_count == v.sign_count, "verified flags/signCount differ from authData");
  FUZZ_CHECK(ad->attested->credential_id == v.credential_id, "verified credential id differs from authData");
  FUZZ_CHECK(!v.credential_id.empty() && v.credential_id.size() <= wa::kMaxCredentialIdBytes,
             "verified credential id of impossible length");
  FUZZ_CHECK(ad->attested->credential_public_key == v.credential_public_key, "verified key differs from authData");
  FUZZ_CHECK(ad->attested->aaguid == v.aaguid, "verified aaguid differs from authData");
  auto key = sigil::crypto::CoseKey::decode(v.credential_public_key);
  FUZZ_CHECK(key.has_value() && key->alg() == v.alg, "verified credential key does not decode to its alg");
  const auto& algs = offered_algs();
  FUZZ_CHECK(std::find(algs.begin(), algs.end(), v.alg) != algs.end(), "verified key alg was not offered");
  static const std::vector<std::string> kTypes = {"none", "self", "basic", "attca", "anonca"};
  FUZZ_CHECK(std::find(kTypes.begin(), kTypes.end(), v.attestation_type) != kTypes.end(),
             "unknown attestation type");
  FUZZ_CHECK(!v.trusted, "a registration is trusted under kNone without anchors");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteView input(data, size);
  size_t n = size >= 2 ? (static_cast<size_t>(data[0]) << 8 | data[1]) : 0;
  const ByteView rest = input.subspan(std::min<size_t>(size, 2));
  n = std::min(n, rest.size());
  const ByteView cdj = rest.first(n);
  const ByteView att = rest.subspan(n);
  const wa::TrustPolicy trust;  // kNone, no anchors

  // A. The fixed challenge.
  {
    auto r = wa::verify_registration(make_input(cdj, att, fixed_challenge(), trust));
    if (r) {
      check_verified(*r, cdj, att, fixed_challenge());
    } else {
      check_failure(r.error());
    }
  }

  // B. The clientDataJSON's own challenge, then the same with one bit flipped.
  auto cd = wa::parse_client_data(cdj);
  if (!cd) return 0;
  const Bytes challenge = cd->challenge;
  auto r = wa::verify_registration(make_input(cdj, att, challenge, trust));
  if (!r) {
    check_failure(r.error());
    return 0;
  }
  check_verified(*r, cdj, att, challenge);
  Bytes flipped = challenge;
  flipped[(size + n) % flipped.size()] ^= static_cast<uint8_t>(1u << (n % 8));
  auto bad = wa::verify_registration(make_input(cdj, att, flipped, trust));
  FUZZ_CHECK(!bad.has_value(), "a registration verified against another challenge");
  check_failure(bad.error());
  return 0;
}
