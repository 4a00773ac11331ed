// Identifiers that must not repeat: across threads, processes and fork().
// Drawn from the kernel (getrandom), so a forked child never repeats its
// parent's sequence as a seeded generator copied by fork() would.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <string>

namespace prodsafe {

// 128 random bits as 32 lowercase hex digits.
[[nodiscard]] std::string random_id();

}  // namespace prodsafe
