#include "ops_common.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iostream>
#include <limits>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/connection.hpp"
#include "sentinel_environment.hpp"
#include "topology.hpp"

namespace prodsafe::cli {

FailureOutput ops_failure_output(std::string_view command, bool json, std::string redacted_url) {
  nlohmann::json fields = nlohmann::json::object();
  if (!redacted_url.empty()) fields["url"] = std::move(redacted_url);
  return {.command = command, .json_on_stdout = json, .fields = std::move(fields)};
}

std::shared_ptr<redis::Client> ops_client(const OpsArguments& arguments) {
  using std::chrono::milliseconds;
  return std::make_shared<redis::Client>(
      arguments.url, redis::Options{.connect_timeout = milliseconds(2000),
                                    .command_timeout = milliseconds(2000),
                                    .pool_size = 1,
                                    .reconnect_backoff_initial = milliseconds(0),
                                    .key_prefix = arguments.key_prefix,
                                    .tls = arguments.tls,
                                    .sentinel = sentinel_options_from_environment()});
}

std::string glob_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

ResumableScan::ResumableScan(redis::Client& client, std::string pattern, std::size_t count)
    : client_(client), pattern_(std::move(pattern)), count_(std::to_string(count)) {
  if (client.endpoint().topology != redis::Endpoint::Topology::kCluster) return;
  // A cluster: every master in turn (a keyless SCAN through the client would
  // see one master's keys), at the address a client would use.
  const runtime_checks::ClusterView view = runtime_checks::ask_cluster(client);
  const bool tls = client.endpoint().tls || client.options().tls.enabled;
  for (const runtime_checks::TopologyNode& node :
       runtime_checks::evaluate_cluster(view, tls).nodes) {
    if (node.role == "master") masters_.push_back(node.address);
  }
  if (masters_.empty()) throw ProtocolError("CLUSTER NODES names no master to SCAN");
}

ResumableScan::~ResumableScan() = default;

std::vector<std::string> ResumableScan::step() {
  if (done_) return {};
  if (!masters_.empty() && !connection_) {
    connection_ = std::make_unique<redis::Connection>(client_.endpoint().server(masters_[master_]),
                                                      client_.options());
  }
  const std::initializer_list<std::string_view> args = {"SCAN",   cursor_, "MATCH",
                                                        pattern_, "COUNT", count_};
  const redis::Reply reply = connection_ ? connection_->command(args) : client_.command(args);
  reply.check("SCAN");
  const auto& parts = reply.array();
  if (parts.size() != 2) throw ProtocolError(fmt::format("SCAN answered {}", reply.debug_string()));
  cursor_ = parts[0].str();
  std::vector<std::string> keys;
  keys.reserve(parts[1].array().size());
  for (const redis::Reply& key : parts[1].array()) keys.push_back(key.str());
  if (cursor_ == "0") {
    connection_.reset();
    if (masters_.empty() || ++master_ == masters_.size()) done_ = true;
  }
  return keys;
}

void scan_keys(redis::Client& client, std::string_view pattern, std::size_t count,
               const std::function<bool(const std::vector<std::string>&)>& batch) {
  ResumableScan scan(client, std::string(pattern), count);
  while (!scan.done()) {
    if (!batch(scan.step())) return;
  }
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || stop == text.data()) return std::nullopt;
  const std::string_view unit(stop, static_cast<std::size_t>(end - stop));
  std::uint64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else if (unit == "d") {
    scale = 86'400'000;
  } else {
    return std::nullopt;
  }
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (value > kMax / scale) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(value * scale));
}

std::string format_duration(std::chrono::milliseconds duration) {
  const std::int64_t ms = duration.count();
  if (ms < 0) {
    // fmt, not "-" + ...: GCC 12 at -O3 reports a false -Wrestrict on the
    // concatenation. The most negative count has no positive counterpart.
    const std::int64_t magnitude = ms == std::numeric_limits<std::int64_t>::min()
                                       ? std::numeric_limits<std::int64_t>::max()
                                       : -ms;
    return fmt::format("-{}", format_duration(std::chrono::milliseconds(magnitude)));
  }
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
  const std::int64_t s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86'400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86'400, (s % 86'400) / 3600);
}

std::int64_t server_now_ms(redis::Client& client) {
  const redis::Reply reply = client.command({"TIME"});
  const auto& parts = reply.array();
  if (parts.size() != 2) throw ProtocolError(fmt::format("TIME answered {}", reply.debug_string()));
  std::int64_t seconds = 0;
  std::int64_t micros = 0;
  const std::string& s = parts[0].str();
  const std::string& us = parts[1].str();
  if (std::from_chars(s.data(), s.data() + s.size(), seconds).ec != std::errc() ||
      std::from_chars(us.data(), us.data() + us.size(), micros).ec != std::errc()) {
    throw ProtocolError(fmt::format("TIME answered {}", reply.debug_string()));
  }
  return seconds * 1000 + micros / 1000;
}

std::string Table::str(std::size_t indent) const {
  std::vector<std::size_t> widths(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  std::string out;
  auto write = [&](const std::vector<std::string>& row) {
    std::string line(indent, ' ');
    for (std::size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      line += cell;
      if (i + 1 < widths.size()) line += std::string(widths[i] - cell.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  write(header_);
  for (const auto& row : rows_) write(row);
  return out;
}

std::string printable(std::string_view bytes, std::size_t max_chars) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
    if (out.size() > max_chars) {
      out.resize(max_chars);
      return out + "...";
    }
  }
  return out;
}

namespace {

bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      length = 2;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    const std::uint32_t minimum = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    if (code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

}  // namespace

nlohmann::json json_bytes(std::string_view bytes) {
  if (valid_utf8(bytes)) return std::string(bytes);
  return printable(bytes, std::numeric_limits<std::size_t>::max() - 4);
}

nlohmann::json ops_json(const std::string& redacted_url, int exit_code) {
  nlohmann::json out = nlohmann::json::object();
  out["schema_version"] = kJsonSchemaVersion;
  out["exit_code"] = exit_code;
  out["url"] = redacted_url;
  return out;
}

void print_json(const nlohmann::json& out) { std::cout << out.dump(2) << "\n" << std::flush; }

}  // namespace prodsafe::cli
