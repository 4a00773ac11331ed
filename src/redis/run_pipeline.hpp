// Running a pipeline on a pooled connection, shared by Client and the
// cluster router.
#pragma once

#include <vector>

#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/pipeline.hpp"
#include "prodsafe/redis/reply.hpp"

namespace prodsafe::redis::detail {

// Runs `pipeline` on `connection` and marks the connection broken when the
// server refused an EXEC, DISCARD or UNWATCH that was to end a MULTI or
// WATCH (Pipeline::state_endings()): it is still in the transaction, or
// watching, and must not be pooled again.
std::vector<Reply> run_pipeline(Connection& connection, const Pipeline& pipeline);

}  // namespace prodsafe::redis::detail
