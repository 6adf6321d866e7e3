#include "api/service/passwordless.h"

#include <algorithm>
#include <fmt/format.h>

#include "engine/base/json_writer.h"
#include "engine/crypto/base64.h"
#include "engine/crypto/digest.h"

namespace sigil::service {
namespace {

constexpr int64_t kOtpTtlMs = 10 * 60 * 1000;
// How long an expired or locked OTP is remembered, so the caller learns why it fails.
constexpr int64_t kOtpMemoryMs = 30 * 60 * 1000;
constexpr int kMaxAttempts = 5;
constexpr int64_t kCompletionTtlMs = 2 * 60 * 1000;
constexpr int64_t kRateWindowMs = 15 * 60 * 1000;
constexpr int kMaxSendsPerWindow = 5;

bool is_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string query_escape(std::string_view in) {
  std::string out;
  for (char c : in) {
    if (is_unreserved(c)) {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned>(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

// Validation errors of 5.4 use the array form (the router renders the message as ["..."]).
std::unexpected<Error> otp_error(ErrorCode code, std::string message, std::string ts) {
  return make_error(code, std::move(message), std::move(ts));
}

}  // namespace

std::string append_query(std::string uri,
                         std::initializer_list<std::pair<std::string_view, std::string_view>> params) {
  const size_t hash = uri.find('#');
  std::string fragment;
  if (hash != std::string::npos) {
    fragment = uri.substr(hash);
    uri.resize(hash);
  }
  char sep = uri.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [k, v] : params) {
    uri += sep;
    uri += query_escape(k);
    uri += '=';
    uri += query_escape(v);
    sep = '&';
  }
  return uri + fragment;
}

Passwordless::Passwordless(ServiceContext& ctx, Oidc& oidc)
    : ctx_(ctx),
      oidc_(oidc),
      otps_(ctx.clock, 1'000'000),
      completions_(ctx.clock, 1'000'000),
      send_counts_(ctx.clock, 1'000'000) {}

std::string Passwordless::keyed_hash(std::string_view purpose, std::string_view value) const {
  const std::string material = fmt::format("{}\n{}", purpose, value);
  return crypto::base64url_encode(crypto::hmac_sha256(ctx_.otp_key, as_bytes(material)));
}

Result<std::string> Passwordless::send_email_otp(const auth::Principal& caller, const Params& in) {
  SIGIL_TRY(require_client(caller));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of(ctx_, caller));
  SIGIL_ASSIGN_OR_RETURN(std::string email_in, in.require_string("email", 254));
  SIGIL_ASSIGN_OR_RETURN(std::string redirect_uri, in.require_string("redirect_uri", 2048));
  SIGIL_ASSIGN_OR_RETURN(auto create_new_user, in.get_bool("create_new_user"));
  SIGIL_ASSIGN_OR_RETURN(auto resource, in.get_string("resource", 2048));
  SIGIL_ASSIGN_OR_RETURN(auto email_content, in.get_object("email_content"));
  SIGIL_ASSIGN_OR_RETURN(auto require_mfa, in.get_bool("require_mfa"));
  SIGIL_ASSIGN_OR_RETURN(auto claims, in.get_object("claims"));
  SIGIL_ASSIGN_OR_RETURN(auto attributes, in.get_object("client_attributes"));
  SIGIL_ASSIGN_OR_RETURN(auto approval, in.get_object("approval_data"));
  SIGIL_ASSIGN_OR_RETURN(std::string email, normalize_email(email_in));

  if (std::find(app.redirect_uris.begin(), app.redirect_uris.end(), redirect_uri) == app.redirect_uris.end()) {
    return invalid_argument("Invalid redirect_uri", "");
  }
  if (require_mfa.value_or(false)) {
    // The second factor (SMS OTP) arrives with the SMS work; refuse rather than silently ignore it.
    return invalid_argument("require_mfa is not supported yet", "");
  }
  std::string resource_s = resource.value_or("");
  SIGIL_TRY(ctx_.tokens.resolve_audience(app, resource_s));
  std::string claims_json, approval_json, attributes_json, subject = "Your sign-in code";
  if (claims) {
    SIGIL_ASSIGN_OR_RETURN(claims_json, validate_object_json(*claims, "claims"));
  }
  if (attributes) {
    SIGIL_ASSIGN_OR_RETURN(attributes_json, validate_object_json(*attributes, "client_attributes"));
  }
  if (approval) {
    SIGIL_ASSIGN_OR_RETURN(approval_json, canonical_approval_data(*approval));
  }
  if (email_content) {
    SIGIL_ASSIGN_OR_RETURN(Params content, Params::from_json(*email_content));
    SIGIL_ASSIGN_OR_RETURN(auto s, content.get_string("subject", 200));
    if (s && !s->empty()) {
      // The subject becomes a mail header and a log line: no control characters.
      if (std::any_of(s->begin(), s->end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
        return invalid_argument("email_content.subject contains control characters");
      }
      subject = *s;
    }
  }

  SIGIL_ASSIGN_OR_RETURN(auto user, ctx_.store.find_user_by_email(app.tenant_id, email));
  const bool create = create_new_user.value_or(false);
  if (!user && !create) return make_error(ErrorCode::kNotFound, "User Not Found");
  if (!user && !app.public_signup) {
    return make_error(ErrorCode::kPermissionDenied, "Public sign-up is not allowed for this application");
  }

  const std::string address_key = fmt::format("{}\n{}", app.id, email);
  bool limited = false;
  if (!send_counts_.update(address_key, [&](int& n, int64_t) {
        if (n >= kMaxSendsPerWindow) limited = true;
        else ++n;
        return true;
      })) {
    SIGIL_TRY(send_counts_.put(address_key, 1, kRateWindowMs));
  }
  if (limited) return make_error(ErrorCode::kRateLimited, "Too many requests", "rate_limited");

  const std::string otp = crypto::random_digits(6);
  PendingOtp pending;
  const std::string h = keyed_hash("otp", otp);
  pending.passcode_hash.assign(h.begin(), h.end());
  pending.expires_at_ms = ctx_.clock.now_ms() + kOtpTtlMs;
  pending.grant.client_id = caller.client_id;
  pending.grant.app_id = app.id;
  pending.grant.redirect_uri = redirect_uri;
  pending.grant.user_id = user ? user->id : "";
  pending.grant.email = email;
  pending.grant.create_new_user = create;
  pending.grant.amr = "eotp";
  pending.grant.claims_json = claims_json;
  pending.grant.resource = resource_s;
  pending.grant.approval_data_json = approval_json;
  pending.grant.client_attributes_json = attributes_json;
  SIGIL_TRY(otps_.put(address_key, std::move(pending), kOtpMemoryMs));

  EmailMessage message;
  message.to = email;
  message.subject = subject;
  message.text = fmt::format("Your {} sign-in code is {}. It expires in 10 minutes.\n"
                             "If you did not ask for it, ignore this email.",
                             app.name, otp);
  message.otp = otp;
  SIGIL_TRY(ctx_.email.send(message));

  JsonWriter w;
  w.begin_object().key("message").string("OTP email sent");
  if (!approval_json.empty()) w.key("approval_data").raw(approval_json);
  w.end_object();
  return std::move(w).str();
}

Result<std::string> Passwordless::validate_email_otp(const auth::Principal& caller, const Params& in) {
  SIGIL_TRY(require_client(caller));
  SIGIL_ASSIGN_OR_RETURN(store::App app, app_of(ctx_, caller));
  auto email_in = in.get_string("email", 254);
  auto passcode = in.get_string("passcode", 16);
  auto response_type = in.get_string("response_type", 16);
  auto nonce = in.get_string("nonce", 512);
  if (!email_in || !passcode || !response_type || !nonce || !*email_in || !*passcode) {
    return invalid_argument("Bad request", "");
  }
  const std::string rt = response_type->value_or("code");
  if (rt != "code" && rt != "id_token") return invalid_argument("Bad request", "");
  SIGIL_ASSIGN_OR_RETURN(std::string email, normalize_email(**email_in));

  const std::string address_key = fmt::format("{}\n{}", app.id, email);
  const std::string presented = keyed_hash("otp", **passcode);
  enum class Outcome { kOk, kWrong, kLocked, kExpired } outcome = Outcome::kWrong;
  PendingGrant grant;
  const int64_t now = ctx_.clock.now_ms();
  const bool found = otps_.update(address_key, [&](PendingOtp& p, int64_t) {
    if (now >= p.expires_at_ms) {
      outcome = Outcome::kExpired;
      return false;
    }
    if (p.locked) {
      outcome = Outcome::kLocked;
      return true;  // stays locked (a new send replaces it)
    }
    if (crypto::ct_equal(as_bytes(presented), p.passcode_hash) && p.grant.client_id == caller.client_id) {
      outcome = Outcome::kOk;
      grant = p.grant;
      return false;  // single use
    }
    // The fifth wrong attempt invalidates the passcode: even the right one fails from then on.
    if (++p.attempts >= kMaxAttempts) p.locked = true;
    return true;
  });
  if (!found) {
    return otp_error(ErrorCode::kInvalidArgument, "No pending passcode", "auth_otp_invalid_request_id");
  }
  if (outcome == Outcome::kExpired) {
    return otp_error(ErrorCode::kInvalidArgument, "Passcode expired", "auth_otp_passcode_expired");
  }
  if (outcome == Outcome::kLocked) {
    return otp_error(ErrorCode::kPermissionDenied, "Too many failed attempts", "auth_locked");
  }
  if (outcome == Outcome::kWrong) {
    return otp_error(ErrorCode::kInvalidArgument, "Invalid passcode", "auth_invalid_credentials");
  }
  grant.nonce = nonce->value_or("");
  const std::string token = crypto::random_token(32);
  SIGIL_TRY(completions_.put(keyed_hash("complete", token), Completion{std::move(grant), rt}, kCompletionTtlMs));
  JsonWriter w;
  w.begin_object()
      .key("result")
      .string(append_query(ctx_.public_url + "/cis/v1/auth/complete", {{"t", token}}))
      .end_object();
  return std::move(w).str();
}

Result<std::string> Passwordless::complete(std::string_view token) {
  if (token.empty() || token.size() > 128) return invalid_argument("Invalid or expired link", "");
  auto completion = completions_.take(keyed_hash("complete", token));
  if (!completion) return invalid_argument("Invalid or expired link", "");
  if (completion->response_type == "id_token") {
    bool created = false;
    auto tokens = oidc_.redeem(completion->grant, &created);
    if (!tokens) {
      if (tokens.error().code == ErrorCode::kUnavailable) return std::unexpected(tokens.error());
      return append_query(completion->grant.redirect_uri,
                          {{"error", "access_denied"}, {"error_description", tokens.error().message}});
    }
    return append_query(completion->grant.redirect_uri, {{"id_token", tokens->id_token}});
  }
  const std::string redirect_uri = completion->grant.redirect_uri;
  SIGIL_ASSIGN_OR_RETURN(std::string code, oidc_.issue_code(std::move(completion->grant)));
  return append_query(redirect_uri, {{"code", code}});
}

}  // namespace sigil::service
