// The commit journal's file format (src/idempotency/commit_journal.hpp): any
// bytes parse without throwing, each damaged line is counted once, and what
// was read writes back to a journal that reads the same, with no damage.
#include <cstddef>
#include <cstdint>
#include <string>

#include "commit_journal.hpp"
#include "fuzz_support.hpp"

namespace {

using prodsafe::fuzz::require;
using prodsafe::idempotency::JournalContents;
using prodsafe::idempotency::JournalEntry;

bool same_entry(const JournalEntry& a, const JournalEntry& b) {
  return a.key == b.key && a.holder.token == b.holder.token && a.holder.id == b.holder.id &&
         a.ttl == b.ttl && a.lease == b.lease && a.state == b.state &&
         a.fingerprint == b.fingerprint && a.result == b.result;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace idem = prodsafe::idempotency;
  const std::string_view text = prodsafe::fuzz::as_text(data, size);
  const JournalContents contents = idem::parse_journal(text);

  std::size_t lines = 0;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    if (end > start) ++lines;
    start = end + 1;
  }
  require(contents.damaged_lines <= lines, "more damaged lines than lines");
  require(contents.pending.size() <= lines, "more pending entries than lines");

  std::string rewritten;
  if (!contents.store.empty()) rewritten += idem::journal_line(idem::store_body(contents.store));
  for (const JournalEntry& entry : contents.pending) {
    rewritten += idem::journal_line(idem::put_body(entry));
  }
  const JournalContents again = idem::parse_journal(rewritten);
  require(again.damaged_lines == 0, "a journal written from parsed entries has damaged lines");
  require(again.store == contents.store, "the store identity does not round-trip");
  require(again.pending.size() == contents.pending.size(), "pending entries do not round-trip");
  for (std::size_t i = 0; i < again.pending.size(); ++i) {
    require(same_entry(again.pending[i], contents.pending[i]), "an entry does not round-trip");
  }
  return 0;
}
