#include "sentinel_environment.hpp"

#include <cstdlib>

namespace prodsafe::cli {

redis::SentinelOptions sentinel_options_from_environment() {
  redis::SentinelOptions options;
  if (const char* user = std::getenv("PRODSAFE_SENTINEL_USER"); user != nullptr && *user != 0) {
    options.user = user;
  }
  if (const char* password = std::getenv("PRODSAFE_SENTINEL_PASSWORD");
      password != nullptr && *password != 0) {
    options.password = password;
  }
  return options;
}

}  // namespace prodsafe::cli
