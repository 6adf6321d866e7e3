// Small HTTP helpers of the browser-facing routes (hosted pages, demo): cookies, redirects, HTML responses.
#pragma once

#include <string>
#include <string_view>

#include "api/http/server.h"

namespace sigil::server {

// The value of cookie `name` in a Cookie header, or empty.
[[nodiscard]] std::string cookie_value(std::string_view cookie_header, std::string_view name);
// 302 to `location`, never cached.
[[nodiscard]] http::Response redirect_response(std::string location);
// An HTML page with the hosted pages' security headers (CSP, no framing, no sniffing, no referrer, no-store).
[[nodiscard]] http::Response html_response(int status, std::string body);

}  // namespace sigil::server
