// Short-lived queries of the embedded servers, and the polling loop the
// topologies (sentinel_topology.cpp, redis_cluster.cpp) wait with. Private to
// prodsafe::embedded.
//
// Thread safety: free functions without shared state.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/redis/info.hpp"
#include "prodsafe/redis/reply.hpp"

namespace prodsafe::embedded::detail {

// The reply to `args` from 127.0.0.1:`port`, on a connection of its own with
// short timeouts (AUTH with `password` when it is not empty). nullopt when
// the server cannot be reached, times out or answers with an error; `error`
// then says which (never the password).
[[nodiscard]] std::optional<redis::Reply> query(int port, const std::string& password,
                                                const std::vector<std::string>& args,
                                                std::string& error);

// INFO `section`, parsed; nullopt like query().
[[nodiscard]] std::optional<redis::Info> query_info(int port, const std::string& password,
                                                    const std::string& section, std::string& error);

// A flat array of field/value pairs (an entry of SENTINEL replicas, a shard of
// CLUSTER SHARDS) as a map of the fields whose values are strings or integers
// (integers in decimal). Throws ProtocolError when `reply` is not an array.
[[nodiscard]] std::map<std::string, std::string> fields(const redis::Reply& reply);

// Calls `done` every 50 ms until it returns true; `done` writes what it saw
// into its argument when it returns false. Throws Timeout ("<what> within N
// ms; last seen: ...") when `timeout` passes first.
void wait_until(std::chrono::milliseconds timeout, std::string_view what,
                const std::function<bool(std::string& seen)>& done);

}  // namespace prodsafe::embedded::detail
