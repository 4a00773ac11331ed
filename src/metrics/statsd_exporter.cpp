// StatsdExporter: pushes a Registry through a StatsdClient.
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/metric_family.hpp"
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

  // One push at a time. Guards counters and histograms (the values last sent).
  std::mutex export_mutex;
  using SeriesKey = std::pair<std::string, std::vector<std::string>>;
  std::map<SeriesKey, double> counters;
  struct HistogramSent {
    std::uint64_t count = 0;
    double sum = 0;
    std::vector<std::uint64_t> buckets;  // cumulative, +Inf last
  };
  std::map<SeriesKey, HistogramSent> histograms;

  // Guards stopping; wake signals it.
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::thread pusher;

  void push();
  void send(Kind kind, const std::string& name, double value,
            const std::vector<std::string>& label_names, const std::vector<std::string>& values,
            Label extra = {});
  void send_histogram(const MetricFamily& family, const Sample& sample);
};

void StatsdExporter::Impl::send(Kind kind, const std::string& name, double value,
                                const std::vector<std::string>& label_names,
                                const std::vector<std::string>& values, Label extra) {
  std::vector<Label> tags;
  tags.reserve(label_names.size() + 1);
  for (std::size_t i = 0; i < label_names.size(); ++i) tags.emplace_back(label_names[i], values[i]);
  if (!extra.first.empty()) tags.push_back(extra);
  client.impl_->record(kind, name, value, tags, 1.0, /*guarded=*/false);
}

void StatsdExporter::Impl::send_histogram(const MetricFamily& family, const Sample& sample) {
  // The count is the +Inf bucket's, as on the /metrics page, so the buckets
  // sent never exceed it while observations land meanwhile.
  const HistogramSample& histogram = sample.histogram;
  const std::vector<std::string>& values = sample.label_values;
  HistogramSent& last = histograms[{family.name, values}];
  if (histogram.count <= last.count) return;
  const std::string& name = family.name;
  send(Kind::kCounter, name + ".count", static_cast<double>(histogram.count - last.count),
       family.label_names, values);
  send(Kind::kCounter, name + ".sum", histogram.sum - last.sum, family.label_names, values);
  last.count = histogram.count;
  last.sum = histogram.sum;
  // Plain StatsD has no tags to carry a bucket's bound: count and sum only.
  if (!client.impl_->dog) return;
  last.buckets.resize(histogram.counts.size(), 0);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < histogram.counts.size(); ++i) {
    cumulative += histogram.counts[i];
    if (cumulative <= last.buckets[i]) continue;
    const std::string bound =
        i < histogram.bounds.size() ? fmt::format("{}", histogram.bounds[i]) : "+Inf";
    send(Kind::kCounter, name + ".bucket", static_cast<double>(cumulative - last.buckets[i]),
         family.label_names, values, Label{"le", bound});
    last.buckets[i] = cumulative;
  }
}

void StatsdExporter::Impl::push() {
  std::lock_guard lock(export_mutex);
  for (const MetricFamily& family : registry.collect()) {
    for (const Sample& sample : family.samples) {
      switch (family.type) {
        case MetricType::kCounter: {
          double& last = counters[{family.name, sample.label_values}];
          if (sample.value <= last) break;
          send(Kind::kCounter, family.name, sample.value - last, family.label_names,
               sample.label_values);
          last = sample.value;  // only once sent: a push that throws loses no change
          break;
        }
        case MetricType::kGauge:
          send(Kind::kGauge, family.name, sample.value, family.label_names, sample.label_values);
          break;
        case MetricType::kHistogram:
          send_histogram(family, sample);
          break;
      }
    }
  }
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
