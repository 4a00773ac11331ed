// Checks over what the worker processes reported: how they ended, the
// results they got (their stats) against each other and against the
// executions in the ledgers. Most scenarios that run workers add these rows.
//
// Thread safety: pure functions over values (check_workers_exited reaps the
// processes it looks at, like WorkerProcess::running()).
#pragma once

#include <span>
#include <string>

#include "chaos/framework/worker_process.hpp"
#include "chaos/history/invariant.hpp"
#include "chaos/history/ledger.hpp"
#include "chaos/worker/worker.hpp"

namespace prodsafe::chaos {

// Every worker that was not killed on purpose exited 0 (finished, nothing
// given up, no unexpected error). Named `name`.
[[nodiscard]] Invariant check_workers_exited(std::string name,
                                             std::span<WorkerProcess* const> workers);
// For every op, every worker that answered it got the same result.
[[nodiscard]] Invariant check_results_agree(std::string name, std::span<const WorkerStats> stats);
// Every result a worker got names an execution in the ledger (worker, pid and
// token of an entry for that op): no worker saw a result nobody produced.
[[nodiscard]] Invariant check_results_executed(std::string name, std::span<const WorkerStats> stats,
                                               std::span<const LedgerEntry> entries);

}  // namespace prodsafe::chaos
