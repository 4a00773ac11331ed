// What the OTLP span and metrics exporters share: the resource they describe
// and the checks of the options they have in common.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace prodsafe::tracing::detail {

// {"attributes": [service.name, then `attributes`]} as OTLP/JSON writes a
// Resource.
[[nodiscard]] nlohmann::json resource_json(
    const std::string& service_name,
    const std::vector<std::pair<std::string, std::string>>& attributes);

// Throws InvalidArgument naming `<options>::endpoint` or
// `<options>::service_name` when the endpoint is not an http(s) URL or the
// service name is empty.
void validate_destination(std::string_view options, const std::string& endpoint,
                          const std::string& service_name);

}  // namespace prodsafe::tracing::detail
