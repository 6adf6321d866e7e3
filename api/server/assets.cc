#include "api/server/assets.h"

namespace sigil::server {

const EmbeddedAsset* find_asset(std::string_view name) noexcept {
  for (const EmbeddedAsset& a : embedded_assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string_view asset_content_type(std::string_view name) noexcept {
  auto ends = [&](std::string_view ext) { return name.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

std::string html_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string render_template(std::string_view tmpl, const std::vector<std::pair<std::string, std::string>>& values) {
  auto lookup = [&](std::string_view name) -> std::string_view {
    for (const auto& [k, v] : values) {
      if (k == name) return v;
    }
    return {};
  };
  std::string out;
  out.reserve(tmpl.size() + 1024);
  size_t pos = 0;
  while (pos < tmpl.size()) {
    const size_t open = tmpl.find("{{", pos);
    if (open == std::string_view::npos) break;
    out.append(tmpl.substr(pos, open - pos));
    const bool raw = tmpl.compare(open, 3, "{{{") == 0;
    const size_t name_start = open + (raw ? 3 : 2);
    const size_t close = tmpl.find(raw ? "}}}" : "}}", name_start);
    if (close == std::string_view::npos) {
      pos = open;
      break;
    }
    const std::string_view value = lookup(tmpl.substr(name_start, close - name_start));
    out += raw ? std::string(value) : html_escape(value);
    pos = close + (raw ? 3 : 2);
  }
  out.append(tmpl.substr(pos));
  return out;
}

}  // namespace sigil::server
