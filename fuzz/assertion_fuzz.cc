// Fuzz target for assertion verification (engine/webauthn/webauthn.h, verify_assertion) against one real
// credential: the ES256 key registered by the WebAuthn L3 spec's none-es256 vector (its COSE_Key bytes are
// embedded below; the seed corpus holds that vector's authentication output).
//
// Input: 2 bytes big-endian N1, clientDataJSON (N1 bytes), 2 bytes big-endian N2, authenticatorData (N2
// bytes), then the signature (the rest); lengths are clipped to what is left. RelyingParty example.org /
// https://example.org, user verification preferred; the stored credential has signCount 0 and BE set (the
// vector's flags are UP|BE|BS).
//
// Properties:
//  - the expected challenge is the clientDataJSON's own (so every input reaches the signature check, which
//    must then be what refuses a mutation); success ⇒ clientDataJSON and authenticatorData are the valid
//    assertion's byte for byte and the signature is the valid one or its high-S/low-S twin (ECDSA
//    malleability: the verifier does not require low S), compared by SHA-256 digests of the valid pieces;
//    the exact valid triple does verify;
//  - with a fixed expected challenge no input carries, nothing verifies;
//  - every failure is kUnauthenticated with ts_error_code auth_webauthn_failed (a sign-count regression
//    cannot happen against a stored count of 0).
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/crypto/cose_key.h"
#include "engine/crypto/digest.h"
#include "engine/webauthn/webauthn.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::Bytes;
using sigil::ByteView;
namespace wa = sigil::webauthn;

// credentialPublicKey of the none-es256 registration (EC2, ES256, P-256).
constexpr std::string_view kCoseKeyHex =
    "a5010203262001215820afefa16f97ca9b2d23eb86ccb64098d20db90856062eb249c33a9b672f26df61225820930a56b87a2fca"
    "66334b03458abf879717c12cc68ed73290af2e2664796b9220";
// SHA-256 of the none-es256 authentication output: clientDataJSON, authenticatorData, the signature as
// given (high S) and its low-S twin.
constexpr std::string_view kClientDataSha = "676a6e380fd31ea5710705c7be1ac4889b037895d0a25291f51251b7d7b1df02";
constexpr std::string_view kAuthDataSha = "2fa3688ce26520481b38f218e1289f8db04f2726fa5d0007a8b2db6c66b4eeab";
constexpr std::string_view kSignatureSha = "e6b84e03104e4fc5f59dee5f5bab455b61775d2725e21d87c11e894815b36119";
constexpr std::string_view kLowSSignatureSha = "2b9d35f561f1be5390e337a0d4a3e623d8a80d1b32e5b026a303c11fa719322c";

Bytes from_hex(std::string_view hex) {
  auto nibble = [](char c) -> uint8_t {
    return static_cast<uint8_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  };
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  return out;
}

bool sha_is(ByteView data, std::string_view hex) {
  const auto d = sigil::crypto::sha256(data);
  const Bytes want = from_hex(hex);
  return std::equal(d.begin(), d.end(), want.begin(), want.end());
}

// The signature with s replaced by n - s when s > n/2 (its DER re-encoding); empty when it is not DER.
Bytes low_s(ByteView sig) {
  struct SigFree {
    void operator()(ECDSA_SIG* p) const noexcept { ECDSA_SIG_free(p); }
  };
  struct BnFree {
    void operator()(BIGNUM* p) const noexcept { BN_free(p); }
  };
  struct GroupFree {
    void operator()(EC_GROUP* p) const noexcept { EC_GROUP_free(p); }
  };
  const unsigned char* p = sig.data();
  std::unique_ptr<ECDSA_SIG, SigFree> parsed(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  if (!parsed) return {};
  std::unique_ptr<EC_GROUP, GroupFree> group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  FUZZ_CHECK(group != nullptr, "EC_GROUP_new_by_curve_name");
  const BIGNUM* order = EC_GROUP_get0_order(group.get());
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(parsed.get(), &r, &s);
  std::unique_ptr<BIGNUM, BnFree> half(BN_dup(order));
  FUZZ_CHECK(half != nullptr && BN_rshift1(half.get(), half.get()) == 1, "BN_rshift1");
  if (BN_cmp(s, half.get()) > 0) {
    BIGNUM* r2 = BN_dup(r);
    BIGNUM* s2 = BN_new();
    FUZZ_CHECK(r2 != nullptr && s2 != nullptr && BN_sub(s2, order, s) == 1, "BN_sub");
    FUZZ_CHECK(ECDSA_SIG_set0(parsed.get(), r2, s2) == 1, "ECDSA_SIG_set0");
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(parsed.get(), &der);
  if (len <= 0) return {};
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

struct Fixture {
  std::unique_ptr<sigil::crypto::CoseKey> key;
  wa::StoredCredential credential;
  wa::RelyingParty rp;
  Bytes fixed_challenge;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    auto key = sigil::crypto::CoseKey::decode(from_hex(kCoseKeyHex));
    FUZZ_CHECK(key.has_value() && key->alg() == sigil::crypto::cose_alg::kES256, "the embedded COSE key");
    x.key = std::make_unique<sigil::crypto::CoseKey>(std::move(*key));
    const std::string_view id = "sigil assertion_fuzz credential";
    x.credential.credential_id.assign(id.begin(), id.end());
    x.credential.public_key = x.key.get();
    x.credential.sign_count = 0;
    x.credential.user_handle = {1, 2, 3, 4};
    x.credential.backup_eligible = true;
    x.rp.rp_id = "example.org";
    x.rp.origins = {"https://example.org"};
    const auto d = sigil::crypto::sha256(sigil::as_bytes("sigil assertion_fuzz: a challenge nobody signed"));
    x.fixed_challenge.assign(d.begin(), d.end());
    return x;
  }();
  return f;
}

wa::AssertionInput make_input(const Fixture& f, ByteView cdj, ByteView ad, ByteView sig, ByteView challenge) {
  wa::AssertionInput in;
  in.credential_id = f.credential.credential_id;
  in.client_data_json = cdj;
  in.authenticator_data = ad;
  in.signature = sig;
  in.expected_challenge = challenge;
  in.rp = &f.rp;
  in.credential = &f.credential;
  return in;
}

void check_failure(const sigil::Error& e) {
  FUZZ_CHECK(e.code == sigil::ErrorCode::kUnauthenticated, "assertion failure is not kUnauthenticated");
  FUZZ_CHECK(e.ts_error_code == "auth_webauthn_failed", "assertion failure without auth_webauthn_failed");
}

// Reads a 2-byte big-endian length and that many bytes (clipped) from the front of `in`.
ByteView take(ByteView& in) {
  size_t n = 0;
  if (in.size() >= 2) n = static_cast<size_t>(in[0]) << 8 | in[1];
  in = in.subspan(std::min<size_t>(in.size(), 2));
  n = std::min(n, in.size());
  const ByteView out = in.first(n);
  in = in.subspan(n);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = fixture();
  ByteView rest(data, size);
  const ByteView cdj = take(rest);
  const ByteView ad = take(rest);
  const ByteView sig = rest;

  // A fixed challenge nobody signed: never verifies.
  {
    auto r = wa::verify_assertion(make_input(f, cdj, ad, sig, f.fixed_challenge));
    FUZZ_CHECK(!r.has_value(), "an assertion verified against a challenge nobody signed");
    check_failure(r.error());
  }

  // The clientDataJSON's own challenge: only the signature stands between a mutation and success.
  auto cd = wa::parse_client_data(cdj);
  const Bytes challenge = cd ? cd->challenge : f.fixed_challenge;
  auto r = wa::verify_assertion(make_input(f, cdj, ad, sig, challenge));
  const bool valid_pieces = sha_is(cdj, kClientDataSha) && sha_is(ad, kAuthDataSha);
  if (r) {
    FUZZ_CHECK(valid_pieces, "an assertion with mutated clientDataJSON or authenticatorData verified");
    const Bytes normal = low_s(sig);
    FUZZ_CHECK(!normal.empty() && sha_is(normal, kLowSSignatureSha), "a mutated signature verified");
    FUZZ_CHECK(r->sign_count == 0 && r->flags == 0x19, "verified signCount/flags differ from the valid assertion's");
    FUZZ_CHECK(r->client_data.type == "webauthn.get" && r->client_data.origin == "https://example.org",
               "verified client data differs from the valid assertion's");
  } else {
    check_failure(r.error());
    FUZZ_CHECK(!(valid_pieces && sha_is(sig, kSignatureSha)), "the valid assertion was refused");
  }
  return 0;
}
