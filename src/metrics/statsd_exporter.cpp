// StatsdExporter: pushes a Registry through a StatsdClient.
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/metrics/statsd.hpp"
#include "statsd_impl.hpp"

namespace prodsafe::metrics {

struct StatsdExporter::Impl {
  Impl(const Registry& registry_in, StatsdClient& client_in, StatsdExporterOptions options_in)
      : registry(registry_in), client(client_in), options(options_in) {}

  const Registry& registry;
  StatsdClient& client;
  StatsdExporterOptions options;

  std::mutex export_mutex;  // one push at a time; guards the previous values
  using SeriesKey = std::pair<std::string, std::vector<std::string>>;
  std::map<SeriesKey, double> counters;
  std::map<SeriesKey, std::pair<std::uint64_t, double>> histograms;  // count, sum

  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::thread pusher;

  void push();
  void send(Kind kind, const std::string& name, double value,
            const std::vector<std::string>& label_names, const std::vector<std::string>& values);
};

void StatsdExporter::Impl::send(Kind kind, const std::string& name, double value,
                                const std::vector<std::string>& label_names,
                                const std::vector<std::string>& values) {
  std::vector<Label> tags;
  tags.reserve(label_names.size());
  for (std::size_t i = 0; i < label_names.size(); ++i) tags.emplace_back(label_names[i], values[i]);
  client.impl_->record(kind, name, value, tags, 1.0, /*guarded=*/false);
}

void StatsdExporter::Impl::push() {
  std::lock_guard lock(export_mutex);
  RegistryVisitor visitor;
  visitor.counter = [this](const Family<Counter>& family) {
    family.for_each([&](const std::vector<std::string>& values, const Counter& series) {
      const double value = series.value();
      double& last = counters[{family.name(), values}];
      const double delta = value - std::exchange(last, value);
      if (delta > 0) send(Kind::kCounter, family.name(), delta, family.label_names(), values);
    });
  };
  visitor.gauge = [this](const Family<Gauge>& family) {
    family.for_each([&](const std::vector<std::string>& values, const Gauge& series) {
      send(Kind::kGauge, family.name(), series.value(), family.label_names(), values);
    });
  };
  visitor.histogram = [this](const Family<Histogram>& family) {
    family.for_each([&](const std::vector<std::string>& values, const Histogram& series) {
      const std::uint64_t count = series.count();
      const double sum = series.sum();
      auto& [last_count, last_sum] = histograms[{family.name(), values}];
      if (count <= last_count) return;
      const auto count_delta = static_cast<double>(count - std::exchange(last_count, count));
      const double sum_delta = sum - std::exchange(last_sum, sum);
      send(Kind::kCounter, family.name() + ".count", count_delta, family.label_names(), values);
      send(Kind::kCounter, family.name() + ".sum", sum_delta, family.label_names(), values);
    });
  };
  registry.visit(visitor);
  client.flush();
}

StatsdExporter::StatsdExporter(const Registry& registry, StatsdClient& client,
                               StatsdExporterOptions options)
    : impl_(std::make_unique<Impl>(registry, client, options)) {
  if (options.interval.count() < 0) {
    throw InvalidArgument("StatsdExporter interval must not be negative (0: no background push)");
  }
  if (options.interval.count() == 0) return;
  impl_->pusher = std::thread([impl = impl_.get()] {
    std::unique_lock lock(impl->mutex);
    while (!impl->wake.wait_for(lock, impl->options.interval, [impl] { return impl->stopping; })) {
      lock.unlock();
      try {
        impl->push();
      } catch (const std::exception& error) {
        logger()->warn("statsd: pushing the metrics registry failed: {}", error.what());
      }
      lock.lock();
    }
  });
}

StatsdExporter::~StatsdExporter() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->pusher.joinable()) impl_->pusher.join();
  try {
    impl_->push();
  } catch (const std::exception& error) {
    logger()->warn("statsd: the last push of the metrics registry failed: {}", error.what());
  }
}

void StatsdExporter::export_now() { impl_->push(); }

}  // namespace prodsafe::metrics
