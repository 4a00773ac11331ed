// `prodsafe journal list | flush`: the local commit journals
// (src/idempotency/commit_journal.hpp) where SideEffectWrapper keeps results
// whose commit could not reach Redis after the effect ran.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "commit_journal.hpp"
#include "ops_commands.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/endpoint.hpp"

namespace prodsafe::cli {
namespace {

namespace fs = std::filesystem;
using idempotency::JournalContents;
using idempotency::JournalEntry;

struct JournalFile {
  fs::path path{};
  bool owner_alive = false;  // a live process holds its lock: that process commits it
  JournalContents contents{};
};

// Whether a live process holds the journal's lock (CommitJournal holds an
// exclusive flock for its life). A shared lock taken and dropped at once
// tells, without keeping an adopter out for longer than that.
bool locked_by_owner(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  const bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  ::close(fd);  // drops the shared lock, if taken
  return locked;
}

std::vector<JournalFile> read_journals(const fs::path& directory) {
  std::vector<JournalFile> files;
  std::error_code error;
  if (!fs::exists(directory, error)) return files;
  if (!fs::is_directory(directory, error)) {
    throw IoError(fmt::format("{} is not a directory", directory.string()));
  }
  fs::directory_iterator it(directory, error);
  if (error) {
    throw IoError(fmt::format("cannot read the journal directory {}: {}", directory.string(),
                              error.message()));
  }
  for (const auto& item : it) {
    if (item.path().extension() != ".journal") continue;
    JournalFile file{.path = item.path(), .owner_alive = locked_by_owner(item.path())};
    file.contents = idempotency::read_journal(item.path());
    files.push_back(std::move(file));
  }
  std::sort(files.begin(), files.end(),
            [](const JournalFile& a, const JournalFile& b) { return a.path < b.path; });
  return files;
}

nlohmann::json entry_json(const JournalEntry& entry) {
  return {{"key", json_bytes(entry.key)},
          {"token", entry.holder.token},
          {"state", idempotency::to_string(entry.state)},
          {"result", json_bytes(entry.result)},
          {"ttl_ms", entry.ttl.count()}};
}

nlohmann::json file_json(const JournalFile& file) {
  nlohmann::json out = {{"file", file.path.string()},
                        {"owner_alive", file.owner_alive},
                        {"store", json_bytes(file.contents.store)},
                        {"damaged_lines", file.contents.damaged_lines},
                        {"pending", nlohmann::json::array()}};
  for (const JournalEntry& entry : file.contents.pending)
    out["pending"].push_back(entry_json(entry));
  return out;
}

void print_files(const fs::path& directory, const std::vector<JournalFile>& files) {
  std::size_t pending = 0;
  for (const JournalFile& file : files) pending += file.contents.pending.size();
  fmt::print("Commit journals in {}: {} file(s), {} result(s) waiting\n", directory.string(),
             files.size(), pending);
  if (files.empty()) return;
  Table table({"FILE", "OWNER", "STORE", "PENDING", "DAMAGED LINES"});
  for (const JournalFile& file : files) {
    table.add({file.path.filename().string(),
               file.owner_alive ? "alive (it commits them)" : "gone (flush commits them)",
               file.contents.store.empty() ? "?" : printable(file.contents.store, 70),
               std::to_string(file.contents.pending.size()),
               std::to_string(file.contents.damaged_lines)});
  }
  fmt::print("\n{}", table.str());
  if (pending == 0) return;
  Table entries({"FILE", "KEY", "TOKEN", "STATE", "RESULT"});
  for (const JournalFile& file : files) {
    for (const JournalEntry& entry : file.contents.pending) {
      entries.add({file.path.filename().string(), printable(entry.key, 60),
                   std::to_string(entry.holder.token),
                   std::string(idempotency::to_string(entry.state)), printable(entry.result, 40)});
    }
  }
  fmt::print("\nWaiting:\n\n{}", entries.str());
}

}  // namespace

int run_journal(const JournalArguments& arguments) {
  const OpsArguments& ops = arguments.ops;
  const bool flush = arguments.action == "flush";
  const std::string url = flush ? redis::redact_url(ops.url) : "";
  const FailureOutput output = ops_failure_output("journal", ops.json, url);
  if (flush && !arguments.redis_given) {
    return report(output, usage_failure("journal flush commits into a Redis: name it with "
                                        "--redis URL (the one the applications use)"));
  }
  const fs::path directory = arguments.directory.empty() ? idempotency::default_journal_directory()
                                                         : fs::path(arguments.directory);
  logger()->set_level(spdlog::level::off);  // the command reports for itself
  try {
    if (!flush) {
      const std::vector<JournalFile> files = read_journals(directory);
      if (ops.json) {
        nlohmann::json out = {{"schema_version", kJsonSchemaVersion},
                              {"exit_code", kExitOk},
                              {"directory", directory.string()},
                              {"journals", nlohmann::json::array()}};
        for (const JournalFile& file : files) out["journals"].push_back(file_json(file));
        print_json(out);
      } else {
        print_files(directory, files);
      }
      return kExitOk;
    }

    // flush: adopt the journals of dead processes that belong to this store,
    // as a wrapper would, and commit each entry as the wrapper's flush does.
    auto client = ops_client(ops);
    auto store = std::make_shared<idempotency::RedisEffectStore>(client);
    const std::string identity =
        arguments.name_space.empty() ? store->identity() : "namespace " + arguments.name_space;
    (void)client->ping();  // unreachable: say so before adopting anything
    idempotency::CommitJournal journal(directory, identity);
    nlohmann::json committed = nlohmann::json::array();
    nlohmann::json lease_lost = nlohmann::json::array();
    nlohmann::json failed = nlohmann::json::array();
    std::optional<Failure> stopped{};
    for (const JournalEntry& entry : journal.pending()) {
      idempotency::FinishStatus status{};
      try {
        status = store->finish(entry.key, entry.holder, entry.state, entry.result,
                               entry.fingerprint, entry.ttl);
      } catch (const std::exception& error) {
        nlohmann::json item = entry_json(entry);
        item["error"] = json_bytes(error.what());
        failed.push_back(item);
        const Failure failure = failure_of(error);
        if (failure.exit_code == kExitUnreachable) {
          stopped = failure;
          break;
        }
        continue;
      }
      (status == idempotency::FinishStatus::kDone ? committed : lease_lost)
          .push_back(entry_json(entry));
      journal.mark_done(entry);
    }
    const std::size_t remaining = journal.pending_count();
    // What this flush left alone: live owners' files and other stores'.
    const std::vector<JournalFile> others = read_journals(directory);
    nlohmann::json left = nlohmann::json::array();
    for (const JournalFile& file : others) {
      if (file.path == journal.file()) continue;
      nlohmann::json item = file_json(file);
      item["why"] = file.owner_alive                  ? "its process is alive and commits it"
                    : file.contents.store != identity ? "another store's"
                                                      : "could not be adopted";
      left.push_back(item);
    }
    // 1 also when a lease was lost: settled, but the effect may have run twice.
    const int exit_code = stopped                                ? stopped->exit_code
                          : remaining > 0 || !lease_lost.empty() ? kExitFailed
                                                                 : kExitOk;
    if (ops.json) {
      nlohmann::json out = ops_json(url, exit_code);
      out["directory"] = directory.string();
      out["store"] = json_bytes(identity);
      out["committed"] = committed;
      out["lease_lost"] = lease_lost;
      out["failed"] = failed;
      out["remaining"] = remaining;
      out["left_alone"] = left;
      if (stopped) {
        out["error"] = {
            {"kind", stopped->kind},
            {"code", stopped->code.empty() ? nlohmann::json() : nlohmann::json(stopped->code)},
            {"message", stopped->message}};
      }
      print_json(out);
      return exit_code;
    }
    fmt::print("Flushing the commit journals in {} for {}:\n", directory.string(), identity);
    for (const auto& item : committed) {
      fmt::print("  committed   {} (token {})\n", item["key"].get<std::string>(),
                 item["token"].get<std::uint64_t>());
    }
    for (const auto& item : lease_lost) {
      fmt::print(
          "  lease lost  {} (token {}): another worker recovered the effect first; it may have "
          "run twice: reconcile with the downstream system\n",
          item["key"].get<std::string>(), item["token"].get<std::uint64_t>());
    }
    for (const auto& item : failed) {
      fmt::print("  not yet     {}: {}\n", item["key"].get<std::string>(),
                 item["error"].get<std::string>());
    }
    fmt::print("{} committed, {} lease lost, {} still waiting\n", committed.size(),
               lease_lost.size(), remaining);
    for (const auto& item : left) {
      fmt::print("  left alone: {} ({} pending; {})\n", item["file"].get<std::string>(),
                 item["pending"].size(), item["why"].get<std::string>());
    }
    if (stopped) std::cerr << "prodsafe journal: " << stopped->message << "\n";
    return exit_code;
  } catch (const std::exception& error) {
    Failure failure = failure_of(error);
    if (dynamic_cast<const InvalidArgument*>(&error) != nullptr) {
      failure.exit_code = kExitIo;  // a journal directory that is not private
      failure.kind = "io";
    }
    return report(output, failure);
  }
}

}  // namespace prodsafe::cli
