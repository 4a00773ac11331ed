#include "three_way.hpp"

#include <fmt/format.h>

#include "baseline.hpp"

namespace prodsafe::bench {

void three_way_timed(benchmark::State& state, int rtt_port, const Side& a, const Side& b) {
  RawConnection raw(state, rtt_port);
  if (!raw) return;
  Clock::duration rtt{};
  Clock::duration a_time{};
  Clock::duration b_time{};
  bool a_first = true;
  for (auto _ : state) {
    const auto start = Clock::now();
    if (!raw.ping()) {
      state.SkipWithError("PING failed");
      break;
    }
    rtt += Clock::now() - start;
    if (a_first) {
      a_time += a.operation();
      b_time += b.operation();
    } else {
      b_time += b.operation();
      a_time += a.operation();
    }
    a_first = !a_first;
  }
  const double iterations = static_cast<double>(state.iterations());
  if (iterations == 0 || rtt.count() == 0 || a_time.count() == 0) return;
  const auto per_call = [&](Clock::duration total) {
    return std::chrono::duration<double, std::nano>(total).count() / iterations;
  };
  const double rtt_ns = per_call(rtt);
  const double a_ns = per_call(a_time);
  const double b_ns = per_call(b_time);
  state.counters["rtt_ns"] = rtt_ns;
  state.counters[a.name + "_ns"] = a_ns;
  state.counters[b.name + "_ns"] = b_ns;
  state.counters[a.name + "_rtt"] = a_ns / rtt_ns;
  state.counters[b.name + "_rtt"] = b_ns / rtt_ns;
  state.counters[b.name + "_" + a.name] = b_ns / a_ns;
}

void three_way(benchmark::State& state, int rtt_port, const std::string& a_name,
               const std::function<void()>& a, const std::string& b_name,
               const std::function<void()>& b) {
  const auto timed = [](const std::function<void()>& operation) {
    return [&operation] {
      const auto start = Clock::now();
      operation();
      return Clock::now() - start;
    };
  };
  three_way_timed(state, rtt_port, Side{a_name, timed(a)}, Side{b_name, timed(b)});
}

void print_three_way(const RatioReporter& reporter, const std::string& label,
                     const std::string& name, const std::string& a, const std::string& a_label,
                     const std::string& b, const std::string& b_label) {
  const double rtt = reporter.median_counter(name, "rtt_ns");
  if (rtt <= 0) {
    fmt::print("{}: not measured (filtered out?)\n", label);
    return;
  }
  fmt::print(
      "{}: {} {:.0f} ns ({:.2f} RTT), {} {:.0f} ns ({:.2f} RTT), {} / {} = {:.2f} (RTT {:.0f} "
      "ns)\n",
      label, a_label, reporter.median_counter(name, a + "_ns"),
      reporter.median_counter(name, a + "_rtt"), b_label, reporter.median_counter(name, b + "_ns"),
      reporter.median_counter(name, b + "_rtt"), b_label, a_label,
      reporter.median_counter(name, b + "_" + a), rtt);
}

}  // namespace prodsafe::bench
