// HTML of the hosted pages: templates from api/server/assets/ filled with the server-side string table of
// the ticket's language (English and French), every value HTML-escaped, page data as JSON in a
// non-executable <script type="application/json"> (the pages' CSP allows scripts from 'self' only).
#pragma once

#include <string>
#include <string_view>

#include "api/service/hosted.h"

namespace sigil::server {

// Content-Security-Policy of every hosted page: no inline script, no third-party resource, no framing.
inline constexpr std::string_view kHostedCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

[[nodiscard]] std::string render_login_page(const service::LoginView& view, std::string_view ticket);
[[nodiscard]] std::string render_registration_page(const service::RegistrationView& view, std::string_view token);
[[nodiscard]] std::string render_error_page(std::string_view locale, std::string_view message);
// A page with a title and one paragraph (#message), e.g. after logout.
[[nodiscard]] std::string render_message_page(std::string_view locale, std::string_view title, std::string_view message);
// The localized text for `key` ("en" when the locale or key is unknown).
[[nodiscard]] std::string_view hosted_string(std::string_view locale, std::string_view key);

}  // namespace sigil::server
