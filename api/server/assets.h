// The hosted pages' static files (api/server/assets/), embedded into the binary at build time by
// api/server/embed_assets.cmake: nothing is read from disk at run time and nothing comes from a CDN.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sigil::server {

struct EmbeddedAsset {
  std::string_view name;  // file name, e.g. "hosted.css"
  std::string_view data;
};

// Defined in the generated source.
[[nodiscard]] std::span<const EmbeddedAsset> embedded_assets() noexcept;

// The asset named `name`, or nullptr.
[[nodiscard]] const EmbeddedAsset* find_asset(std::string_view name) noexcept;
// Content-Type by extension (html, css, js, svg, json; else application/octet-stream).
[[nodiscard]] std::string_view asset_content_type(std::string_view name) noexcept;

// Fills a template: {{name}} is replaced by the HTML-escaped value, {{{name}}} by the raw value; unknown
// names become empty.
[[nodiscard]] std::string render_template(std::string_view tmpl,
                                          const std::vector<std::pair<std::string, std::string>>& values);
[[nodiscard]] std::string html_escape(std::string_view in);

}  // namespace sigil::server
