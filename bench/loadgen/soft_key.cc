#include "bench/loadgen/soft_key.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <stdexcept>

namespace loadgen {
namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(what);
}

void cbor_head(Bytes& out, uint8_t major, uint64_t n) {
  const auto m = static_cast<uint8_t>(major << 5);
  if (n < 24) {
    out.push_back(static_cast<uint8_t>(m | n));
  } else if (n < 0x100) {
    out.push_back(m | 24);
    out.push_back(static_cast<uint8_t>(n));
  } else if (n < 0x10000) {
    out.push_back(m | 25);
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(n));
  } else {
    out.push_back(m | 26);
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(n >> s));
  }
}
void cbor_bytes(Bytes& out, const uint8_t* p, size_t n) {
  cbor_head(out, 2, n);
  out.insert(out.end(), p, p + n);
}
void cbor_text(Bytes& out, std::string_view t) {
  cbor_head(out, 3, t.size());
  out.insert(out.end(), t.begin(), t.end());
}

std::string client_data(std::string_view type, std::string_view challenge, std::string_view origin) {
  // The browser puts the challenge's bytes in base64url without padding.
  auto raw = base64_decode(challenge);
  require(raw.has_value(), "challenge is not base64");
  std::string s = "{\"type\":";
  s += json_string(type);
  s += ",\"challenge\":";
  s += json_string(base64(*raw, true, false));
  s += ",\"origin\":";
  s += json_string(origin);
  s += ",\"crossOrigin\":false}";
  return s;
}

void push_be32(Bytes& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

}  // namespace

std::string base64(const uint8_t* p, size_t n, bool url, bool pad) {
  static constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* a = url ? kUrl : kStd;
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += a[v >> 18];
    out += a[(v >> 12) & 63];
    out += a[(v >> 6) & 63];
    out += a[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    out += a[v >> 18];
    out += a[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out += a[v >> 18];
    out += a[(v >> 12) & 63];
    out += a[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

std::optional<Bytes> base64_decode(std::string_view s) {
  while (!s.empty() && s.back() == '=') s.remove_suffix(1);
  Bytes out;
  out.reserve(s.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  if (bits >= 6) return std::nullopt;  // a single leftover character
  return out;
}

std::array<uint8_t, 32> sha256(const void* p, size_t n) {
  std::array<uint8_t, 32> h{};
  SHA256(static_cast<const unsigned char*>(p), n, h.data());
  return h;
}

Bytes random_bytes(size_t n) {
  Bytes b(n);
  require(RAND_bytes(b.data(), static_cast<int>(n)) == 1, "RAND_bytes");
  return b;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 15];
          out += kHex[c & 15];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

Pkey p256_generate() {
  Pkey k(EVP_EC_gen("P-256"));
  require(k != nullptr, "P-256 key generation");
  return k;
}

Bytes es256_sign(EVP_PKEY* key, const void* msg, size_t n) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  require(ctx != nullptr, "EVP_MD_CTX_new");
  size_t len = 0;
  Bytes sig;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, static_cast<const unsigned char*>(msg), n) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, sig.data(), &len, static_cast<const unsigned char*>(msg), n) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  require(ok, "ES256 sign");
  return sig;
}

std::string spki_base64(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  require(len > 0, "i2d_PUBKEY");
  std::string out = base64(der, static_cast<size_t>(len), false, true);
  OPENSSL_free(der);
  return out;
}

std::string passkey_create(Passkey& c, std::string_view rp_id, std::string_view challenge,
                           std::string_view user_id, std::string_view origin) {
  c.id = random_bytes(32);
  auto uh = base64_decode(user_id);
  require(uh.has_value(), "user.id is not base64");
  c.user_handle = std::move(*uh);
  c.rp_id = std::string(rp_id);
  c.rp_id_hash = sha256(rp_id.data(), rp_id.size());
  c.counter = 1;
  c.key = p256_generate();
  const std::string cdj = client_data("webauthn.create", challenge, origin);

  uint8_t point[65];
  size_t plen = 0;
  require(EVP_PKEY_get_octet_string_param(c.key.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &plen) == 1 &&
              plen == 65,
          "public point");
  Bytes ad(c.rp_id_hash.begin(), c.rp_id_hash.end());
  ad.push_back(0x01 | 0x04 | 0x40);  // UP, UV, AT
  push_be32(ad, c.counter);
  ad.insert(ad.end(), 16, 0);  // AAGUID of "none"
  ad.push_back(static_cast<uint8_t>(c.id.size() >> 8));
  ad.push_back(static_cast<uint8_t>(c.id.size()));
  ad.insert(ad.end(), c.id.begin(), c.id.end());
  // COSE_Key {1:2, 3:-7, -1:1, -2:x, -3:y}
  cbor_head(ad, 5, 5);
  ad.insert(ad.end(), {0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21});
  cbor_bytes(ad, point + 1, 32);
  ad.push_back(0x22);
  cbor_bytes(ad, point + 33, 32);

  Bytes att;
  cbor_head(att, 5, 3);
  cbor_text(att, "fmt");
  cbor_text(att, "none");
  cbor_text(att, "attStmt");
  cbor_head(att, 5, 0);
  cbor_text(att, "authData");
  cbor_bytes(att, ad.data(), ad.size());

  const std::string id = base64(c.id, true, false);
  std::string j = "{\"id\":\"" + id + "\",\"rawId\":\"" + id +
                  "\",\"type\":\"public-key\",\"authenticatorAttachment\":\"platform\",\"response\":{"
                  "\"clientDataJSON\":\"" + base64(cdj, true, false) + "\",\"attestationObject\":\"" +
                  base64(att, true, false) + "\",\"transports\":[\"internal\"]},\"clientExtensionResults\":{}}";
  return j;
}

std::string passkey_assert(Passkey& c, std::string_view session_id, std::string_view challenge,
                           std::string_view origin) {
  ++c.counter;
  const std::string cdj = client_data("webauthn.get", challenge, origin);
  Bytes ad(c.rp_id_hash.begin(), c.rp_id_hash.end());
  ad.push_back(0x01 | 0x04);  // UP, UV
  push_be32(ad, c.counter);
  Bytes signed_data = ad;
  const auto h = sha256(cdj.data(), cdj.size());
  signed_data.insert(signed_data.end(), h.begin(), h.end());
  const Bytes sig = es256_sign(c.key.get(), signed_data.data(), signed_data.size());

  const std::string id = base64(c.id, true, false);
  std::string j = "{\"webauthnSessionId\":" + json_string(session_id) +
                  ",\"publicKeyCredential\":{\"id\":\"" + id + "\",\"rawId\":\"" + base64(c.id) +
                  "\",\"type\":\"public-key\",\"authenticatorAttachment\":\"platform\",\"response\":{"
                  "\"clientDataJSON\":\"" + base64(cdj) + "\",\"authenticatorData\":\"" + base64(ad) +
                  "\",\"signature\":\"" + base64(sig) + "\",\"userHandle\":\"" + base64(c.user_handle) +
                  "\"}},\"userAgent\":\"sigil-loadgen\"}";
  return base64(j);
}

}  // namespace loadgen
