#include "sentinel.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::redis::detail {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kCredentialsHint =
    " (the sentinels' credentials are redis::Options::sentinel.user and .password, separate "
    "from the master's in the URL)";

// Time left until `deadline`, at least 1 ms (a 0 would mean "no limit").
milliseconds left(Clock::time_point deadline) {
  const auto rest = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  return std::max(rest, milliseconds(1));
}

bool is_string(const Reply& reply) {
  return reply.type() == Reply::Type::kString || reply.type() == Reply::Type::kStatus;
}

// [host, port] from SENTINEL get-master-addr-by-name; nullopt for any other shape.
std::optional<HostPort> master_address(const Reply& reply) {
  if (reply.type() != Reply::Type::kArray || reply.array().size() != 2) return std::nullopt;
  const Reply& host = reply.array()[0];
  const Reply& port = reply.array()[1];
  if (!is_string(host) || !is_string(port) || host.str().empty()) return std::nullopt;
  int number = 0;
  const std::string& text = port.str();
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end != text.data() + text.size() || number < 1 || number > 65535) {
    return std::nullopt;
  }
  return HostPort{host.str(), number};
}

// The first element of a ROLE reply: "master", "slave" or "sentinel".
std::string role_of(const Reply& reply) {
  if (reply.is_error()) return fmt::format("unknown (ROLE failed: {})", reply.error_message());
  if (reply.type() != Reply::Type::kArray || reply.array().empty() ||
      !is_string(reply.array().front())) {
    return "unknown (ROLE answered " + reply.debug_string() + ")";
  }
  return reply.array().front().str();
}

}  // namespace

SentinelResolver::SentinelResolver(Endpoint endpoint, Options options)
    : endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      redacted_(endpoint_.redacted()),
      order_(endpoint_.servers) {}

SentinelResolver::~SentinelResolver() {
  stopping_ = true;
  if (!watcher_) return;
  if (watcher_pid_ == ::getpid()) {
    watcher_->join();
  } else {
    (void)watcher_.release();  // a child of fork(): the thread is the parent's
  }
}

Endpoint SentinelResolver::sentinel_endpoint(const HostPort& sentinel) const {
  // The sentinels' credentials are Options::sentinel's (sentinel_options());
  // they have no databases.
  Endpoint endpoint = endpoint_.server(sentinel);
  endpoint.user.clear();
  endpoint.password.clear();
  endpoint.db = 0;
  return endpoint;
}

Options SentinelResolver::sentinel_options(milliseconds timeout) const {
  Options asking = options_;
  asking.user = options_.sentinel.user;
  asking.password = options_.sentinel.password;
  asking.connect_timeout = timeout;
  asking.command_timeout = timeout;
  return asking;
}

std::unique_ptr<Connection> SentinelResolver::open_master() const {
  const bool bounded = options_.connect_timeout.count() > 0;
  const Clock::time_point deadline = Clock::now() + options_.connect_timeout;
  std::vector<HostPort> order;
  {
    std::lock_guard lock(mutex_);
    order = order_;
  }
  std::vector<std::string> problems;
  std::size_t reached = 0;
  std::size_t unknown = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const HostPort& sentinel = order[i];
    if (bounded && Clock::now() >= deadline) {
      problems.push_back(fmt::format("{}: not asked, connect_timeout ({} ms) ran out",
                                     sentinel.str(), options_.connect_timeout.count()));
      continue;
    }
    const Options asking = sentinel_options(
        bounded ? std::min(options_.sentinel.timeout, left(deadline)) : options_.sentinel.timeout);
    std::optional<HostPort> master;
    try {
      Connection connection(sentinel_endpoint(sentinel), asking);
      const Reply reply =
          connection.command({"SENTINEL", "get-master-addr-by-name", endpoint_.master_name});
      ++reached;
      if (reply.is_nil()) {
        ++unknown;
        problems.push_back(
            fmt::format("{} knows no master named '{}'", sentinel.str(), endpoint_.master_name));
        continue;
      }
      if (reply.is_error()) {
        const std::string& message = reply.error_message();
        const bool credentials = message.starts_with("NOAUTH") ||
                                 message.starts_with("WRONGPASS") || message.starts_with("NOPERM");
        problems.push_back(fmt::format("{} refused SENTINEL get-master-addr-by-name: {}{}",
                                       sentinel.str(), message,
                                       credentials ? kCredentialsHint : ""));
        continue;
      }
      master = master_address(reply);
      if (!master) {
        problems.push_back(fmt::format("{} answered SENTINEL get-master-addr-by-name with {}",
                                       sentinel.str(), reply.debug_string()));
        continue;
      }
    } catch (const ReplyError& error) {
      ++reached;  // it answered, and refused AUTH
      problems.push_back(
          fmt::format("{}: {} (the sentinels' credentials are "
                      "redis::Options::sentinel.user and .password)",
                      sentinel.str(), error.what()));
      continue;
    } catch (const Error& error) {
      problems.push_back(fmt::format("{}: {}", sentinel.str(), error.what()));
      continue;
    }

    const Endpoint target = endpoint_.server(*master);
    Options connecting = options_;
    if (bounded) connecting.connect_timeout = left(deadline);
    try {
      auto connection = std::make_unique<Connection>(target, connecting);
      const std::string role = role_of(connection->command({"ROLE"}));
      if (role == "master") {
        std::lock_guard lock(mutex_);
        // Ask the sentinel that answered first next time.
        const auto found = std::find(order_.begin(), order_.end(), sentinel);
        if (found != order_.end()) std::rotate(order_.begin(), found, found + 1);
        last_master_ = master->str();
        return connection;
      }
      problems.push_back(fmt::format(
          "{} names {} as the master of '{}', but that node's role is {} (a failover may be "
          "under way)",
          sentinel.str(), master->str(), endpoint_.master_name, role));
    } catch (const ReplyError&) {
      throw;  // the master refused AUTH or SELECT: the URL's credentials or db
    } catch (const Error& error) {
      problems.push_back(
          fmt::format("{} names {} as the master of '{}', which cannot be "
                      "reached: {}",
                      sentinel.str(), master->str(), endpoint_.master_name, error.what()));
    }
  }

  std::string detail;
  for (const std::string& problem : problems) {
    if (!detail.empty()) detail += "; ";
    detail += problem;
  }
  if (reached > 0 && unknown == reached) {
    throw ConfigError(fmt::format(
        "{}: no sentinel knows a master named '{}' ({}); check ?master= in the URL against "
        "the names in the sentinels' configuration (SENTINEL MASTERS)",
        redacted_, endpoint_.master_name, detail));
  }
  if (reached == 0) {
    throw StoreUnavailable(fmt::format("{}: none of the {} sentinels could be reached ({})",
                                       redacted_, order.size(), detail));
  }
  throw StoreUnavailable(fmt::format("{}: the sentinels name no reachable master for '{}' ({})",
                                     redacted_, endpoint_.master_name, detail));
}

std::string SentinelResolver::last_master() const {
  std::lock_guard lock(mutex_);
  return last_master_;
}

void SentinelResolver::watch(std::function<void()> on_switch) {
  if (!options_.sentinel.watch_switch) return;
  std::lock_guard lock(mutex_);
  if (watcher_ && watcher_pid_ == ::getpid()) return;
  if (watcher_) (void)watcher_.release();  // the parent's, in a child of fork()
  watcher_pid_ = ::getpid();
  watcher_ = std::make_unique<std::thread>(
      [this, on_switch = std::move(on_switch)]() mutable { watch_loop(std::move(on_switch)); });
}

void SentinelResolver::watch_loop(std::function<void()> on_switch) {
  // How often the thread looks at stopping_: the longest a destructor waits.
  constexpr milliseconds kTick{100};
  const std::string prefix = endpoint_.master_name + " ";
  std::size_t next = 0;
  while (!stopping_) {
    Endpoint sentinel;
    {
      std::lock_guard lock(mutex_);
      sentinel = sentinel_endpoint(order_[next % order_.size()]);
    }
    ++next;
    try {
      Connection connection(sentinel, sentinel_options(options_.sentinel.timeout));
      const std::string_view channel = "+switch-master";
      connection.subscribe(std::span<const std::string_view>(&channel, 1));
      while (!stopping_) {
        const std::optional<Reply> message = connection.next_message(kTick);
        if (!message) continue;
        const auto& parts = message->array();
        // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
        if (parts.size() == 3 && is_string(parts[2]) && parts[2].str().starts_with(prefix)) {
          logger()->info("{}: sentinel {} announced a new master: {}", redacted_,
                         sentinel.servers.front().str(), parts[2].str());
          on_switch();
        }
      }
    } catch (const std::exception& error) {
      logger()->debug("{}: watching +switch-master on {}: {}", redacted_,
                      sentinel.servers.front().str(), error.what());
      // Wait a second (in ticks) before the next sentinel.
      for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(kTick);
    }
  }
}

}  // namespace prodsafe::redis::detail
