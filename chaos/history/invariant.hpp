// The rows of a chaos verdict: an invariant holds or is VIOLATED (any
// violation fails the run); a measurement is evidence (e.g. duplicates under
// appendfsync everysec) that never fails it. Every check in the chaos suite
// returns Invariants; held_unless() builds the usual one, which holds when
// nothing violates it:
//
//   std::vector<std::string> lost = ...;  // one line per violation
//   context.add(held_unless("every expected op executed", lost));
//
// invariant_table() prints rows as the chaos suite and `prodsafe demo` show
// them:
//   INVARIANT                      STATUS    COUNT  DETAIL
//   always: no op executed twice   held          0
//   off: ops executed twice        measured     37  order-3 x2 (tokens 1, 1; ...)
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace prodsafe::chaos {

// How many violations a row's detail names before "and N more".
inline constexpr std::size_t kDetailItems = 5;

struct Invariant {
  std::string name{};
  bool held = true;
  // How many items violate it (0 when it holds).
  std::size_t count = 0;
  // The first few violations, for people; empty when it holds (unless the
  // check keeps its evidence either way).
  std::string detail{};
};

// A row that is evidence, not a pass/fail check.
struct Measurement {
  std::string name{};
  std::size_t count = 0;
  std::string detail{};
  // How many invariants precede it in the table (ScenarioContext::measure
  // keeps rows in the order they were added). Default: 0.
  std::size_t position = 0;
};

// Holds when `violations` (one line each) is empty; count is their number
// and detail names the first `shown` (first_few).
[[nodiscard]] Invariant held_unless(std::string name, std::span<const std::string> violations,
                                    std::size_t shown = kDetailItems);
// Holds when `violations` is 0; `detail` is kept only when it does not hold.
[[nodiscard]] Invariant held_unless(std::string name, std::size_t violations,
                                    std::string detail = {});

// "a, b, c and 4 more": the first `shown` items, for a row's detail.
[[nodiscard]] std::string first_few(std::span<const std::string> items,
                                    std::size_t shown = kDetailItems);

// A header line, then one aligned row per invariant and measurement (each
// measurement before the invariant at its position), each line ending in
// '\n'. Statuses: "held", "VIOLATED", "measured".
[[nodiscard]] std::string invariant_table(std::span<const Invariant> invariants,
                                          std::span<const Measurement> measurements = {});

}  // namespace prodsafe::chaos
