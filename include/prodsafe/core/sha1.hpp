// SHA-1, for naming Lua scripts the way Redis does (EVALSHA takes the
// lower-case hex SHA-1 of the script's source). Not for security.
//
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace prodsafe {

[[nodiscard]] std::array<std::uint8_t, 20> sha1(std::string_view data) noexcept;

// The digest as 40 lower-case hex digits.
[[nodiscard]] std::string sha1_hex(std::string_view data);

}  // namespace prodsafe
