// The dashboard's page, embedded in the binary at build time
// (cmake/embed_assets.cmake from tools/prodsafe/dashboard/): no file is read
// and nothing is fetched from elsewhere when it is served.
#pragma once

#include <span>
#include <string_view>

namespace prodsafe::cli {

struct Asset {
  std::string_view path;          // "/", "/dashboard.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;
};

[[nodiscard]] std::span<const Asset> dashboard_assets();

}  // namespace prodsafe::cli
