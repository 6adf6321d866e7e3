#include "api/service/context.h"

#include <algorithm>

namespace sigil::service {

Result<store::App> app_of(ServiceContext& ctx, const auth::Principal& p) {
  SIGIL_ASSIGN_OR_RETURN(auto app, ctx.store.find_app(p.app_id));
  if (!app) return make_error(ErrorCode::kUnauthenticated, "Invalid token");
  return std::move(*app);
}

Result<void> require_client(const auth::Principal& p) {
  if (p.is_user()) return make_error(ErrorCode::kPermissionDenied, "A client access token is required");
  return {};
}

Result<void> require_user(const auth::Principal& p) {
  if (!p.is_user()) return make_error(ErrorCode::kPermissionDenied, "A user access token is required");
  return {};
}

Result<std::string> normalize_email(std::string_view email) {
  if (email.empty() || email.size() > 254) return invalid_argument("Invalid email address");
  const size_t at = email.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == email.size() ||
      email.find('@', at + 1) != std::string_view::npos) {
    return invalid_argument("Invalid email address");
  }
  std::string out;
  out.reserve(email.size());
  for (char c : email) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return invalid_argument("Invalid email address");
    out.push_back(static_cast<char>(u < 0x80 ? std::tolower(u) : u));
  }
  return out;
}

}  // namespace sigil::service
