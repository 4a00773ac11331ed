// Two ways of doing one operation, against the same server, alternated with
// the RTT baseline (a raw hiredis PING, baseline.hpp) in one loop: plain TCP
// against TLS, one server against a cluster, a direct URL against Sentinel.
// The order of the two flips every iteration, so that drifts in machine
// load hit all three alike. Counters, for sides named A and B: rtt_ns,
// A_ns, B_ns, A_rtt (A / RTT), B_rtt and B_A (B / A).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <benchmark/benchmark.h>

#include "ratio_reporter.hpp"

namespace prodsafe::bench {

using Clock = std::chrono::steady_clock;
// One operation; returns the time it took, so that it can leave set-up or
// tear-down out of it.
using TimedOperation = std::function<Clock::duration()>;

struct Side {
  std::string name;  // "plain", "tls", "cluster", ...
  TimedOperation operation;
};

// Runs the loop above; the RTT baseline pings 127.0.0.1:`rtt_port`.
void three_way_timed(benchmark::State& state, int rtt_port, const Side& a, const Side& b);

// three_way_timed() with each operation timed whole.
void three_way(benchmark::State& state, int rtt_port, const std::string& a_name,
               const std::function<void()>& a, const std::string& b_name,
               const std::function<void()>& b);

// "label: A x ns (r RTT), B y ns (r RTT), B / A = q (RTT z ns)", the medians
// of benchmark `name`; `a_label` and `b_label` are how the line names them.
void print_three_way(const RatioReporter& reporter, const std::string& label,
                     const std::string& name, const std::string& a, const std::string& a_label,
                     const std::string& b, const std::string& b_label);

}  // namespace prodsafe::bench
