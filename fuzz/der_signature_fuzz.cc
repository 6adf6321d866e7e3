// Fuzz target for ECDSA P-256 signature verification (PublicKey::verify), the input being the signature.
//
// A P-256 key is generated once per process (OpenSSL EVP_EC_gen) with one valid DER signature over a fixed
// message. Properties:
//  - verify(msg, input) is true only for a strict-DER signature (d2i_ECDSA_SIG consumes all of it and
//    i2d_ECDSA_SIG re-encodes it byte for byte) with r, s in [1, n-1] that OpenSSL itself verifies;
//  - differential: verify agrees with OpenSSL's own EVP_PKEY_verify on every input (OpenSSL 3 also
//    insists on DER that re-encodes identically), so sigil neither rejects a valid one nor accepts more;
//  - the valid signature verifies, and so does its high-S twin (n - s; documented as accepted);
//  - flipping any one bit of the valid signature (bit chosen by the input's first two bytes) fails, and
//    so does the valid signature with the input appended (trailing bytes).
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/crypto/digest.h"
#include "engine/crypto/public_key.h"
#include "fuzz/fuzz_check.h"

namespace {

using sigil::Bytes;
using sigil::ByteView;
using sigil::crypto::PublicKey;

constexpr std::string_view kMessage = "sigil der_signature_fuzz: the signed message";

struct Fixture {
  EVP_PKEY* pkey = nullptr;  // process lifetime
  std::unique_ptr<PublicKey> key;
  Bytes valid_sig;
  Bytes high_s_twin;
  Bytes digest;
};

Bytes der_of(const ECDSA_SIG* sig) {
  unsigned char* raw = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &raw);
  FUZZ_CHECK(len > 0, "i2d_ECDSA_SIG");
  Bytes out(raw, raw + len);
  OPENSSL_free(raw);
  return out;
}

// OpenSSL's own verdict over the same digest, independent of sigil's code path.
bool openssl_verifies(EVP_PKEY* pkey, ByteView digest, ByteView sig) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(pkey, nullptr);
  FUZZ_CHECK(ctx != nullptr, "EVP_PKEY_CTX_new");
  bool ok = EVP_PKEY_verify_init(ctx) == 1 &&
            EVP_PKEY_verify(ctx, sig.data(), sig.size(), digest.data(), digest.size()) == 1;
  EVP_PKEY_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

// Strict DER with r, s in [1, n-1], checked with OpenSSL directly.
bool strict_der_in_range(ByteView sig) {
  const unsigned char* p = sig.data();
  ECDSA_SIG* parsed = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  if (parsed == nullptr) {
    ERR_clear_error();
    return false;
  }
  bool ok = p == sig.data() + sig.size();
  if (ok) {
    const Bytes again = der_of(parsed);
    ok = again.size() == sig.size() && std::equal(again.begin(), again.end(), sig.begin());
  }
  if (ok) {
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(parsed, &r, &s);
    const EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    const BIGNUM* n = EC_GROUP_get0_order(group);
    for (const BIGNUM* v : {r, s}) ok = ok && !BN_is_negative(v) && !BN_is_zero(v) && BN_cmp(v, n) < 0;
    EC_GROUP_free(const_cast<EC_GROUP*>(group));
  }
  ECDSA_SIG_free(parsed);
  return ok;
}

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.pkey = EVP_EC_gen("P-256");
    FUZZ_CHECK(x.pkey != nullptr, "EVP_EC_gen");
    unsigned char* spki = nullptr;
    const int spki_len = i2d_PUBKEY(x.pkey, &spki);
    FUZZ_CHECK(spki_len > 0, "i2d_PUBKEY");
    auto parsed = PublicKey::from_spki_der(ByteView(spki, static_cast<size_t>(spki_len)));
    OPENSSL_free(spki);
    FUZZ_CHECK(parsed.has_value(), "PublicKey::from_spki_der of a fresh P-256 key");
    x.key = std::make_unique<PublicKey>(std::move(*parsed));

    // Sign with OpenSSL directly (not sigil's SigningKey), SHA-256 over the message.
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    size_t sig_len = 0;
    FUZZ_CHECK(md != nullptr && EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, x.pkey) == 1,
               "EVP_DigestSignInit");
    const auto* msg = reinterpret_cast<const unsigned char*>(kMessage.data());
    FUZZ_CHECK(EVP_DigestSign(md, nullptr, &sig_len, msg, kMessage.size()) == 1, "EVP_DigestSign size");
    x.valid_sig.resize(sig_len);
    FUZZ_CHECK(EVP_DigestSign(md, x.valid_sig.data(), &sig_len, msg, kMessage.size()) == 1, "EVP_DigestSign");
    x.valid_sig.resize(sig_len);
    EVP_MD_CTX_free(md);

    const auto d = sigil::crypto::sha256(sigil::as_bytes(kMessage));
    x.digest.assign(d.begin(), d.end());

    // High-S twin: (r, n - s) is the same signature's other valid spelling.
    const unsigned char* p = x.valid_sig.data();
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(x.valid_sig.size()));
    FUZZ_CHECK(sig != nullptr, "d2i_ECDSA_SIG of our own signature");
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig, &r, &s);
    EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM* twin_s = BN_new();
    FUZZ_CHECK(group != nullptr && twin_s != nullptr && BN_sub(twin_s, EC_GROUP_get0_order(group), s) == 1,
               "n - s");
    ECDSA_SIG* twin = ECDSA_SIG_new();
    FUZZ_CHECK(twin != nullptr && ECDSA_SIG_set0(twin, BN_dup(r), twin_s) == 1, "ECDSA_SIG_set0");
    x.high_s_twin = der_of(twin);
    ECDSA_SIG_free(twin);
    ECDSA_SIG_free(sig);
    EC_GROUP_free(group);

    FUZZ_CHECK(x.key->verify(sigil::as_bytes(kMessage), x.valid_sig), "the valid signature does not verify");
    FUZZ_CHECK(x.key->verify(sigil::as_bytes(kMessage), x.high_s_twin), "the high-S twin does not verify");
    FUZZ_CHECK(!x.key->verify(sigil::as_bytes("another message"), x.valid_sig), "verified another message");
    return x;
  }();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = fixture();
  const ByteView input(data, size);
  const ByteView msg = sigil::as_bytes(kMessage);

  // 1. The input as the signature.
  const bool ok = f.key->verify(msg, input);
  const bool ok_digest = f.key->verify_digest(f.digest, input);
  FUZZ_CHECK(ok == ok_digest, "verify and verify_digest disagree");
  FUZZ_CHECK(ok == openssl_verifies(f.pkey, f.digest, input), "verify disagrees with OpenSSL's EVP_PKEY_verify");
  if (ok) FUZZ_CHECK(strict_der_in_range(input), "verify accepted a signature that is not strict DER");
  const bool is_known = (input.size() == f.valid_sig.size() && std::equal(input.begin(), input.end(), f.valid_sig.begin())) ||
                        (input.size() == f.high_s_twin.size() && std::equal(input.begin(), input.end(), f.high_s_twin.begin()));
  if (is_known) FUZZ_CHECK(ok, "a known valid signature failed");

  // 2. One bit of the valid signature flipped, the bit chosen by the input.
  if (size >= 2) {
    const size_t bits = f.valid_sig.size() * 8;
    const size_t bit = (size_t{data[0]} | size_t{data[1]} << 8) % bits;
    Bytes flipped = f.valid_sig;
    flipped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    FUZZ_CHECK(!f.key->verify(msg, flipped), "a one-bit-flipped signature verified");
  }

  // 3. The valid signature with the input appended: trailing bytes are never accepted.
  if (size > 0) {
    Bytes trailing = f.valid_sig;
    trailing.insert(trailing.end(), input.begin(), input.end());
    FUZZ_CHECK(!f.key->verify(msg, trailing), "the valid signature with trailing bytes verified");
  }
  return 0;
}
