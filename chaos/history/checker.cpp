#include "chaos/history/checker.hpp"

#include <algorithm>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::chaos {
namespace {

std::string tokens_of(const std::vector<LedgerEntry>& executions) {
  std::string tokens;
  for (const LedgerEntry& entry : executions) {
    if (!tokens.empty()) tokens += ", ";
    tokens += std::to_string(entry.fencing_token);
  }
  return tokens;
}

bool strictly_increasing(const std::vector<LedgerEntry>& executions) {
  for (std::size_t i = 1; i < executions.size(); ++i) {
    if (executions[i].fencing_token <= executions[i - 1].fencing_token) return false;
  }
  return true;
}

// Executions grouped by op, ops in order of their first execution.
struct Grouped {
  std::vector<std::string> order;
  std::unordered_map<std::string, std::vector<LedgerEntry>> by_op;
};

Grouped group(std::span<const LedgerEntry> entries) {
  Grouped grouped;
  for (LedgerEntry& entry : in_ledger_order(entries)) {
    auto [it, inserted] = grouped.by_op.try_emplace(entry.op_id);
    if (inserted) grouped.order.push_back(entry.op_id);
    it->second.push_back(std::move(entry));
  }
  return grouped;
}

nlohmann::json entry_json(const LedgerEntry& entry) {
  nlohmann::json json = entry;
  if (!entry.file.empty()) json["location"] = fmt::format("{}:{}", entry.file, entry.line);
  return json;
}

}  // namespace

std::vector<std::string> numbered_op_ids(std::string_view pattern, std::size_t count,
                                         std::size_t first) {
  std::size_t at = std::string_view::npos;
  std::size_t placeholders = 0;
  for (std::string_view placeholder : {std::string_view("%d"), std::string_view("{}")}) {
    for (std::size_t pos = pattern.find(placeholder); pos != std::string_view::npos;
         pos = pattern.find(placeholder, pos + placeholder.size())) {
      at = pos;
      ++placeholders;
    }
  }
  if (placeholders != 1) {
    throw InvalidArgument(
        fmt::format("numbered_op_ids: the pattern '{}' must hold exactly one %d or {{}}, not {}",
                    pattern, placeholders));
  }
  const std::string_view prefix = pattern.substr(0, at);
  const std::string_view suffix = pattern.substr(at + 2);
  std::vector<std::string> ids;
  ids.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    ids.push_back(fmt::format("{}{}{}", prefix, first + i, suffix));
  return ids;
}

std::vector<LedgerEntry> in_ledger_order(std::span<const LedgerEntry> entries) {
  std::vector<LedgerEntry> sorted(entries.begin(), entries.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const LedgerEntry& a, const LedgerEntry& b) {
    return std::tie(a.steady_ns, a.file, a.line) < std::tie(b.steady_ns, b.file, b.line);
  });
  return sorted;
}

Invariant check_fencing_tokens_increase(std::span<const LedgerEntry> entries) {
  const Grouped grouped = group(entries);
  std::vector<std::string> violations;
  for (const std::string& op : grouped.order) {
    const std::vector<LedgerEntry>& executions = grouped.by_op.at(op);
    if (!strictly_increasing(executions)) {
      violations.push_back(fmt::format("{} (tokens {})", op, tokens_of(executions)));
    }
  }
  return held_unless(std::string(kFencingTokensIncrease), violations);
}

CheckReport check_exactly_once(std::span<const std::string> expected,
                               std::span<const LedgerEntry> entries) {
  std::unordered_set<std::string_view> wanted;
  for (const std::string& id : expected) {
    if (!wanted.insert(id).second) {
      throw InvalidArgument(
          fmt::format("check_exactly_once: the expected op '{}' is listed twice", id));
    }
  }
  CheckReport report;
  report.expected = expected.size();
  report.executions = entries.size();
  const Grouped grouped = group(entries);
  for (const std::string& id : expected) {
    const auto it = grouped.by_op.find(id);
    if (it == grouped.by_op.end()) {
      report.lost.push_back(id);
    } else if (it->second.size() == 1) {
      ++report.executed_once;
    }
  }
  for (const std::string& op : grouped.order) {
    const std::vector<LedgerEntry>& executions = grouped.by_op.at(op);
    if (!wanted.contains(op)) report.unexpected.push_back(op);
    if (executions.size() > 1) {
      report.duplicates.push_back(Duplicate{.op_id = op,
                                            .executions = executions,
                                            .tokens_increase = strictly_increasing(executions)});
    }
  }
  std::vector<std::string> duplicated;
  for (const Duplicate& duplicate : report.duplicates) {
    std::vector<std::string> workers;
    for (const LedgerEntry& entry : duplicate.executions) workers.push_back(entry.worker);
    duplicated.push_back(fmt::format("{} x{} (tokens {}; workers {})", duplicate.op_id,
                                     duplicate.executions.size(), tokens_of(duplicate.executions),
                                     fmt::join(workers, ", ")));
  }
  report.invariants.push_back(held_unless(std::string(kLedgersReadable), 0));
  report.invariants.push_back(held_unless(std::string(kNoOpLost), report.lost));
  report.invariants.push_back(held_unless(std::string(kNoOpDuplicated), duplicated));
  report.invariants.push_back(held_unless(std::string(kNoUnexpectedOp), report.unexpected));
  report.invariants.push_back(check_fencing_tokens_increase(entries));
  return report;
}

CheckReport check_exactly_once(std::span<const std::string> expected,
                               const LedgerContents& ledgers) {
  CheckReport report = check_exactly_once(expected, std::span<const LedgerEntry>(ledgers.entries));
  report.ledger_files = ledgers.files;
  report.torn_lines = ledgers.torn_lines;
  report.ledger_errors = ledgers.errors;
  report.invariants.front() = held_unless(std::string(kLedgersReadable), ledgers.errors);
  return report;
}

bool CheckReport::ok() const noexcept {
  return std::all_of(invariants.begin(), invariants.end(),
                     [](const Invariant& invariant) { return invariant.held; });
}

const Invariant* CheckReport::find(std::string_view name) const noexcept {
  for (const Invariant& invariant : invariants) {
    if (invariant.name == name) return &invariant;
  }
  return nullptr;
}

std::string CheckReport::table() const {
  const std::string text = fmt::format(
      "{} expected ops, {} executions in {} ledger files: {} exactly once, {} duplicated, "
      "{} lost, {} unexpected; {} torn last lines skipped\n",
      expected, executions, ledger_files, executed_once, duplicates.size(), lost.size(),
      unexpected.size(), torn_lines.size());
  return text + invariant_table(invariants);
}

nlohmann::json CheckReport::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const Invariant& invariant : invariants) {
    rows.push_back({{"name", invariant.name},
                    {"held", invariant.held},
                    {"count", invariant.count},
                    {"detail", invariant.detail}});
  }
  nlohmann::json duplicate_rows = nlohmann::json::array();
  for (const Duplicate& duplicate : duplicates) {
    nlohmann::json executions_json = nlohmann::json::array();
    for (const LedgerEntry& entry : duplicate.executions)
      executions_json.push_back(entry_json(entry));
    duplicate_rows.push_back({{"op", duplicate.op_id},
                              {"tokens_increase", duplicate.tokens_increase},
                              {"executions", std::move(executions_json)}});
  }
  return {{"ok", ok()},
          {"expected", expected},
          {"executions", executions},
          {"executed_once", executed_once},
          {"ledger_files", ledger_files},
          {"invariants", std::move(rows)},
          {"duplicates", std::move(duplicate_rows)},
          {"lost", lost},
          {"unexpected", unexpected},
          {"torn_lines", torn_lines},
          {"ledger_errors", ledger_errors}};
}

}  // namespace prodsafe::chaos
