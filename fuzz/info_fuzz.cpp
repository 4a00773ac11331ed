// INFO parsing (prodsafe/redis/info.hpp) and the runtime checks that read it
// (src/runtime_checks/checks.hpp), as `prodsafe check` runs them on a server's
// answer: parse_info never throws, and every check gives a result for any
// INFO text, with CONFIG available or not.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "checks.hpp"
#include "fuzz_support.hpp"
#include "prodsafe/redis/info.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using prodsafe::fuzz::require;
  namespace checks = prodsafe::runtime_checks;
  checks::ServerFacts facts;
  facts.info = prodsafe::redis::parse_info(prodsafe::fuzz::as_text(data, size));
  for (const char* field :
       {"redis_version", "used_memory", "maxmemory", "aof_enabled", "loading"}) {
    (void)facts.info.number(field);
  }
  const checks::ValidatorOptions options;
  facts.config_error = "CONFIG is disabled";
  for (const auto& result : checks::evaluate(facts, options)) {
    require(!result.name.empty(), "a check result without a name");
  }
  // The same INFO with CONFIG GET answering from it.
  std::map<std::string, std::string> config;
  for (const char* parameter : {"appendfsync", "save", "maxmemory-policy"}) {
    if (auto value = facts.info.get(parameter)) config[parameter] = *value;
  }
  facts.config = config;
  facts.config_error.clear();
  for (const auto& result : checks::evaluate(facts, options)) {
    require(!result.name.empty(), "a check result without a name");
  }
  return 0;
}
