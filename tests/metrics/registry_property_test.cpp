// Property: whatever families are registered, in whatever order, every
// registration is either refused (InvalidArgument) or the page the registry
// serves still parses with `promtool check metrics`.
//
// Names come from a small alphabet of stems and suffixes so that clashes
// (jobs / jobs_count / jobs_total ...) are frequent; types, label names
// (reserved, invalid, repeated ones included), buckets, help texts and label
// values (ill-formed UTF-8, quotes, newlines, NUL) are random too.
//
// Seeds 1..PRODSAFE_REGISTRY_SEEDS (default 200), stopped after 20 s; one
// seed alone with PRODSAFE_REGISTRY_SEED=N. A failing seed prints itself,
// the registrations it made and the page promtool refused.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "promtool.hpp"

namespace prodsafe::metrics {
namespace {

using namespace std::string_view_literals;

constexpr std::uint64_t kDefaultSeeds = 200;
constexpr auto kTimeBudget = std::chrono::seconds(20);
constexpr int kRegistrationsPerSeed = 10;

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : fallback;
}

// `text` with every byte outside printable ASCII as \xNN, for the failure report.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    out += byte >= 0x20 && byte < 0x7f ? std::string(1, c) : fmt::format("\\x{:02x}", byte);
  }
  return out;
}

class RandomFamilies {
 public:
  explicit RandomFamilies(std::uint64_t seed) : rng_(seed) {}

  // Makes the registrations, records them in log(); returns how many were accepted.
  int run(Registry& registry) {
    int accepted = 0;
    for (int i = 0; i < kRegistrationsPerSeed; ++i) accepted += register_one(registry) ? 1 : 0;
    return accepted;
  }
  [[nodiscard]] const std::string& log() const { return log_; }
  [[nodiscard]] int refused() const { return refused_; }

 private:
  template <class T>
  const T& pick(const std::vector<T>& from) {
    return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(rng_)];
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  std::string name() {
    static const std::vector<std::string> stems = {"jobs", "jobs", "queue", "ns:jobs", "_x"};
    static const std::vector<std::string> suffixes = {
        "", "", "_total", "_count", "_sum", "_bucket", "_seconds", "_total_total", "_count_total"};
    std::string out = pick(stems) + pick(suffixes);
    if (chance(0.2)) out += pick(suffixes);
    return out;
  }

  std::vector<std::string> label_names() {
    static const std::vector<std::string> names = {"venue", "side",     "le",    "quantile",
                                                   "__x",   "bad-name", "venue", "job",
                                                   "_u",    "l\xc3\xa9"};  // not ASCII
    std::vector<std::string> out;
    const int count = std::uniform_int_distribution<int>(0, 2)(rng_);
    for (int i = 0; i < count; ++i) out.push_back(pick(names));
    return out;
  }

  std::vector<double> bounds() {
    const double inf = std::numeric_limits<double>::infinity();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    static const std::vector<std::vector<double>> choices = {
        {0.1, 1}, {0.1, 1},  {},       {1e-9, 1e21}, {-5, 0, 5}, {1, inf},
        {nan},    {-inf, 0}, {1, 0.5}, {2, 2},       {0.25},
    };
    return pick(choices);
  }

  std::string help() {
    static const std::vector<std::string> helps = {
        "Jobs.", "Jobs.", "", "Back\\slash and\nnewline.", "Bad UTF-8: \xff\xc3.", "\"quoted\""};
    return pick(helps);
  }

  std::string label_value() {
    static const std::vector<std::string> values = {"buy",
                                                    "",
                                                    "fast",
                                                    "a\"b\\c\nd",
                                                    "\xff",
                                                    "caf\xc3\xa9",
                                                    "\xc3",
                                                    "\xed\xa0\x80",
                                                    std::string("nul\0byte", 8),
                                                    "+Inf",
                                                    "__overflow__",
                                                    "\xf0\x9f\x98\x80",
                                                    "\r\t"};
    return pick(values);
  }

  bool register_one(Registry& registry) {
    const int type = std::uniform_int_distribution<int>(0, 2)(rng_);
    const std::string metric = name();
    const std::vector<std::string> labels = label_names();
    const std::string text = help();
    const std::vector<double> buckets = bounds();
    std::string what = fmt::format("{}(\"{}\", labels {{{}}}",
                                   type == 0   ? "counter"
                                   : type == 1 ? "gauge"
                                               : "histogram",
                                   metric, fmt::join(labels, ","));
    what = printable(what);
    if (type == 2) what += fmt::format(", bounds {{{}}}", fmt::join(buckets, ","));
    what += fmt::format(", help \"{}\")", printable(text));
    try {
      switch (type) {
        case 0: {
          auto& family = registry.counter(metric, text, labels);
          for (int i = 0; i < 2; ++i) family.labels(values(labels.size())).inc(1.5);
          break;
        }
        case 1: {
          auto& family = registry.gauge(metric, text, labels);
          for (int i = 0; i < 2; ++i) family.labels(values(labels.size())).set(-2.5);
          break;
        }
        default: {
          auto& family = registry.histogram(metric, text, labels, buckets);
          for (int i = 0; i < 2; ++i) family.labels(values(labels.size())).observe(0.3);
          break;
        }
      }
    } catch (const InvalidArgument& error) {
      log_ += fmt::format("  refused  {}: {}\n", what, error.what());
      ++refused_;
      return false;
    }
    log_ += fmt::format("  accepted {}\n", what);
    return true;
  }

  std::vector<std::string_view> values(std::size_t count) {
    held_.clear();
    for (std::size_t i = 0; i < count; ++i) held_.push_back(label_value());
    return {held_.begin(), held_.end()};
  }

  std::mt19937_64 rng_;
  std::string log_;
  int refused_ = 0;
  std::vector<std::string> held_;
};

TEST(RegistryPropertyTest, EveryRegistrationIsRefusedOrThePageParses) {
  std::uint64_t first = 1;
  std::uint64_t last = env_number("PRODSAFE_REGISTRY_SEEDS", kDefaultSeeds);
  if (const std::uint64_t only = env_number("PRODSAFE_REGISTRY_SEED", 0); only != 0) {
    first = last = only;
  }
  const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
  std::uint64_t seeds = 0;
  int accepted = 0;
  int refused = 0;
  for (std::uint64_t seed = first; seed <= last; ++seed, ++seeds) {
    if (std::chrono::steady_clock::now() > deadline) break;
    MetricsCardinalityGuard guard;  // warning mode: only the registry's own checks refuse
    Registry registry(&guard);
    RandomFamilies families(seed);
    accepted += families.run(registry);
    refused += families.refused();
    const std::string page = registry.serialize();
    const auto checked = promtool::promtool_check(page);
    ASSERT_NE(checked.exit_code, -1) << "promtool could not be run";
    ASSERT_TRUE(checked.parsed()) << "seed " << seed
                                  << " (rerun alone with PRODSAFE_REGISTRY_SEED=" << seed
                                  << "): registrations accepted, yet promtool refuses the page\n"
                                  << families.log() << "promtool:\n"
                                  << checked.output << "page:\n"
                                  << page;
  }
  std::printf("%llu seeds, %d registrations accepted, %d refused\n",
              static_cast<unsigned long long>(seeds), accepted, refused);
  // The property is not met by refusing everything (or nothing).
  EXPECT_GT(accepted, static_cast<int>(seeds));
  if (seeds >= 20) {
    EXPECT_GT(refused, static_cast<int>(seeds));
  }
}

}  // namespace
}  // namespace prodsafe::metrics
