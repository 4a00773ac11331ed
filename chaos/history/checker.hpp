// The chaos suite's verdict: reads what the ledgers say was executed and
// checks it against what should have been, op by op.
//
//   auto ledgers = prodsafe::chaos::read_ledgers(dir);
//   auto report = prodsafe::chaos::check_exactly_once(
//       prodsafe::chaos::numbered_op_ids("order-%d", 1000), ledgers);
//   std::cout << report.table();
//   return report.ok() ? 0 : 1;
//
// Ledger order: entries sorted by steady_ns (CLOCK_MONOTONIC, shared by the
// processes of one boot), ties by file and line. Within one writer this is
// the order of its lines.
//
// Thread safety: pure functions over values.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chaos/history/invariant.hpp"
#include "chaos/history/ledger.hpp"

namespace prodsafe::chaos {

// The invariants a report checks, by name (the rows of the table, in order).
inline constexpr std::string_view kLedgersReadable = "ledgers readable";
inline constexpr std::string_view kNoOpLost = "every expected op executed";
inline constexpr std::string_view kNoOpDuplicated = "no op executed twice";
inline constexpr std::string_view kNoUnexpectedOp = "no unexpected op executed";
inline constexpr std::string_view kFencingTokensIncrease = "fencing tokens increase";

// An op executed more than once.
struct Duplicate {
  std::string op_id{};
  // Every execution, in ledger order.
  std::vector<LedgerEntry> executions{};
  // True when each execution carried a higher fencing token than the one
  // before it (a downstream that fences on the token could reject the rest).
  bool tokens_increase = false;
};

struct CheckReport {
  std::size_t expected = 0;
  // Ledger entries read (every execution of every op).
  std::size_t executions = 0;
  // Expected ops executed exactly once.
  std::size_t executed_once = 0;
  std::size_t ledger_files = 0;
  std::vector<Duplicate> duplicates{};
  // Expected but never executed, in the order they were expected.
  std::vector<std::string> lost{};
  // Executed but not expected, in ledger order.
  std::vector<std::string> unexpected{};
  // Torn last lines skipped ("file:line"): tolerated, shown for context.
  std::vector<std::string> torn_lines{};
  // Unreadable lines and files ("file:line: reason").
  std::vector<std::string> ledger_errors{};
  // One row per invariant, named by the k* constants above, in their order.
  std::vector<Invariant> invariants{};

  // True when every invariant held.
  [[nodiscard]] bool ok() const noexcept;
  // The row named `name`, or null.
  [[nodiscard]] const Invariant* find(std::string_view name) const noexcept;
  // A summary line, then one aligned row per invariant:
  //   INVARIANT                    STATUS    COUNT  DETAIL
  //   no op executed twice         VIOLATED      1  order-7 x2 (tokens 1, 2)
  [[nodiscard]] std::string table() const;
  [[nodiscard]] nlohmann::json to_json() const;
};

// `count` ids from `pattern`, whose one placeholder ("%d" or "{}") is
// replaced by first, first + 1, ...: numbered_op_ids("order-%d", 3) is
// {"order-0", "order-1", "order-2"}. Throws InvalidArgument unless the
// pattern has exactly one placeholder.
[[nodiscard]] std::vector<std::string> numbered_op_ids(std::string_view pattern, std::size_t count,
                                                       std::size_t first = 0);

// Checks that every expected op was executed exactly once and nothing else
// was. `expected` must not repeat an id (InvalidArgument).
[[nodiscard]] CheckReport check_exactly_once(std::span<const std::string> expected,
                                             const LedgerContents& ledgers);
// The same over bare entries (no torn lines, no read errors).
[[nodiscard]] CheckReport check_exactly_once(std::span<const std::string> expected,
                                             std::span<const LedgerEntry> entries);

// `entries` sorted into ledger order (see the top of this file).
[[nodiscard]] std::vector<LedgerEntry> in_ledger_order(std::span<const LedgerEntry> entries);

// Holds when, for every op, the fencing tokens of its executions strictly
// increase in ledger order; count is the number of ops where they do not.
[[nodiscard]] Invariant check_fencing_tokens_increase(std::span<const LedgerEntry> entries);

}  // namespace prodsafe::chaos
