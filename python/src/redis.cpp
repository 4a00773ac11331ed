// prodsafe.Redis: the C++ redis::Client (pooled, thread-safe) from Python.
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"
#include "prodsafe/redis/reply.hpp"

namespace prodsafe::python {
namespace {

using redis::Client;
using redis::Reply;

py::object bytes_of(const std::string& value) { return py::bytes(value); }

// A reply as redis-py gives it by default: bulk strings as bytes, status
// replies as str, integers, None, lists; an error reply raises ReplyError.
py::object to_python(const Reply& reply) {
  switch (reply.type()) {
    case Reply::Type::kNil:
      return py::none();
    case Reply::Type::kString:
      return bytes_of(reply.str());
    case Reply::Type::kStatus:
      return utf8_text(reply.str());
    case Reply::Type::kInteger:
      return py::int_(reply.integer());
    case Reply::Type::kArray: {
      py::list items;
      for (const Reply& element : reply.array()) items.append(to_python(element));
      return items;
    }
    case Reply::Type::kError:
      raise_python(ReplyError(reply.error_message(), "execute_command"));
  }
  return py::none();
}

// A command argument: str (UTF-8), bytes, int or float, as redis-py sends them.
std::string command_arg(py::handle value, std::size_t index) {
  if (py::isinstance<py::bytes>(value)) return value.cast<std::string>();
  if (py::isinstance<py::str>(value)) return str_arg(value, "argument " + std::to_string(index));
  if (py::isinstance<py::bool_>(value))
    raise_wrong_type("argument " + std::to_string(index), "str, bytes, int or float", value);
  if (py::isinstance<py::int_>(value) || py::isinstance<py::float_>(value))
    return py::str(value).cast<std::string>();
  raise_wrong_type("argument " + std::to_string(index), "str, bytes, int or float", value);
}

std::optional<std::string> optional_str(py::handle value, std::string_view what) {
  if (value.is_none()) return std::nullopt;
  return str_arg(value, what);
}

void apply_tls(redis::TlsOptions& tls, py::handle value) {
  if (py::isinstance<py::bool_>(value)) {
    tls.enabled = value.cast<bool>();
    return;
  }
  if (!py::isinstance<py::dict>(value))
    raise_wrong_type("tls", "a bool or a dict of TLS settings", value);
  for (const auto& [key, item] : value.cast<py::dict>()) {
    const std::string name = str_arg(key, "a tls setting's name");
    const std::string what = "tls[\"" + name + "\"]";
    if (name == "enabled") {
      tls.enabled = bool_arg(item, what);
    } else if (name == "ca_file") {
      tls.ca_file = str_arg(item, what);
    } else if (name == "ca_dir") {
      tls.ca_dir = str_arg(item, what);
    } else if (name == "cert_file") {
      tls.cert_file = str_arg(item, what);
    } else if (name == "key_file") {
      tls.key_file = str_arg(item, what);
    } else if (name == "sni") {
      tls.sni = str_arg(item, what);
    } else if (name == "verify_peer") {
      tls.verify_peer = bool_arg(item, what);
    } else {
      raise_python(InvalidArgument(
          "unknown tls setting '" + name +
          "'; the settings are enabled, ca_file, ca_dir, cert_file, key_file, sni, verify_peer"));
    }
  }
  tls.enabled = true;
}

void apply_sentinel(redis::SentinelOptions& sentinel, py::handle value) {
  if (!py::isinstance<py::dict>(value))
    raise_wrong_type("sentinel", "a dict of Sentinel settings", value);
  for (const auto& [key, item] : value.cast<py::dict>()) {
    const std::string name = str_arg(key, "a sentinel setting's name");
    const std::string what = "sentinel[\"" + name + "\"]";
    if (name == "user") {
      sentinel.user = optional_str(item, what);
    } else if (name == "password") {
      sentinel.password = optional_str(item, what);
    } else if (name == "timeout") {
      sentinel.timeout = duration_arg(item, what);
    } else if (name == "watch_switch") {
      sentinel.watch_switch = bool_arg(item, what);
    } else {
      raise_python(InvalidArgument("unknown sentinel setting '" + name +
                                   "'; the settings are user, password, timeout, watch_switch"));
    }
  }
}

// redis::Options from Python keyword arguments (durations in seconds).
redis::Options options_from(const py::kwargs& kwargs) {
  redis::Options options;
  for (const auto& [key, value] : kwargs) {
    const std::string name = str_arg(key, "a keyword name");
    if (name == "connect_timeout") {
      options.connect_timeout = duration_arg(value, name);
    } else if (name == "command_timeout") {
      options.command_timeout = duration_arg(value, name);
    } else if (name == "pool_size") {
      const long long size = int_arg(value, name);
      if (size < 1) raise_python(InvalidArgument("pool_size must be at least 1"));
      options.pool_size = static_cast<std::size_t>(size);
    } else if (name == "pool_checkout_timeout") {
      options.pool_checkout_timeout = duration_arg(value, name);
    } else if (name == "reconnect_backoff_initial") {
      options.reconnect_backoff_initial = duration_arg(value, name);
    } else if (name == "reconnect_backoff_max") {
      options.reconnect_backoff_max = duration_arg(value, name);
    } else if (name == "key_prefix") {
      options.key_prefix = str_arg(value, name);
    } else if (name == "user") {
      options.user = optional_str(value, name);
    } else if (name == "password") {
      options.password = optional_str(value, name);
    } else if (name == "tls") {
      apply_tls(options.tls, value);
    } else if (name == "sentinel") {
      apply_sentinel(options.sentinel, value);
    } else {
      raise_python(InvalidArgument(
          "unknown option '" + name +
          "' for prodsafe.Redis; the options are connect_timeout, command_timeout, pool_size, "
          "pool_checkout_timeout, reconnect_backoff_initial, reconnect_backoff_max, key_prefix, "
          "user, password, tls, sentinel"));
    }
  }
  return options;
}

std::shared_ptr<Client> make_client(py::handle url, const py::kwargs& kwargs) {
  const std::string text = str_arg(url, "url");
  redis::Options options = options_from(kwargs);
  // Resolving a sentinel URL asks the sentinels: a round trip.
  gil_release release;
  return std::make_shared<Client>(text, std::move(options));
}

}  // namespace

std::shared_ptr<redis::Client> client_arg(py::handle redis) {
  py::object adapted = py::module_::import("prodsafe._adapt").attr("redis_for")(redis);
  return adapted.cast<std::shared_ptr<Client>>();
}

void bind_redis(py::module_& m) {
  py::class_<Client, std::shared_ptr<Client>>(m, "Redis", R"doc(
A pooled, thread-safe connection to Redis (one server, a Sentinel-managed
master or a Redis Cluster), shared by everything in prodsafe.

    Redis(url, **options)

url: redis://, rediss://, unix://, redis-sentinel:// or redis-cluster://
(docs/operations.md). Options (durations in seconds or datetime.timedelta):
connect_timeout, command_timeout, pool_size, pool_checkout_timeout,
reconnect_backoff_initial, reconnect_backoff_max, key_prefix, user, password,
tls (True, or a dict of enabled, ca_file, ca_dir, cert_file, key_file, sni,
verify_peer), sentinel (a dict of user, password, timeout, watch_switch).

Connections open on first use. In a forked child, the client opens its own
connections: a socket is never shared with the parent.
)doc")
      .def(py::init(&make_client), py::arg("url"))
      .def(
          "execute_command",
          [](Client& client, const py::args& args) {
            if (args.empty()) raise_python(InvalidArgument("execute_command needs a command name"));
            std::vector<std::string> command;
            command.reserve(args.size());
            for (std::size_t i = 0; i < args.size(); ++i)
              command.push_back(command_arg(args[i], i));
            Reply reply;
            {
              gil_release release;
              reply = client.execute(std::vector<std::string_view>(command.begin(), command.end()));
            }
            return to_python(reply);
          },
          "Sends one command and returns its reply as redis-py does (bulk strings as\n"
          "bytes, status replies as str). An error reply raises ReplyError.")
      .def(
          "ping",
          [](Client& client) {
            gil_release release;
            return client.ping() == "PONG";
          },
          "True when the server answers PING.")
      .def(
          "get",
          [](Client& client, py::handle key) -> py::object {
            const std::string name = command_arg(key, 0);
            std::optional<std::string> value;
            {
              gil_release release;
              value = client.get(name);
            }
            if (!value) return py::none();
            return bytes_of(*value);
          },
          py::arg("key"))
      .def(
          "set",
          [](Client& client, py::handle key, py::handle value, py::handle ex) {
            const std::string name = command_arg(key, 0);
            const std::string data = command_arg(value, 1);
            const auto ttl = ex.is_none() ? std::chrono::milliseconds(0) : duration_arg(ex, "ex");
            gil_release release;
            client.set(name, data, ttl);
          },
          py::arg("key"), py::arg("value"), py::arg("ex") = py::none(),
          "SET key value [PX ex]; ex in seconds or a timedelta.")
      .def(
          "delete",
          [](Client& client, py::handle key) {
            const std::string name = command_arg(key, 0);
            gil_release release;
            return client.del(name);
          },
          py::arg("key"))
      .def(
          "key",
          [](const Client& client, py::handle name) { return client.key(str_arg(name, "name")); },
          py::arg("name"), "name with the client's key_prefix in front.")
      .def_property_readonly(
          "url", [](const Client& client) { return client.endpoint().redacted(); },
          "The URL with any password replaced by ***.")
      .def(
          "pool_stats",
          [](const Client& client) {
            const redis::PoolStats stats = client.stats();
            py::dict out;
            out["open"] = stats.open;
            out["idle"] = stats.idle;
            out["created"] = stats.created;
            out["dropped"] = stats.dropped;
            out["connect_failures"] = stats.connect_failures;
            out["checkout_timeouts"] = stats.checkout_timeouts;
            return out;
          },
          "The connection pool's counters.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](const py::object&, const py::args&) { return false; })
      .def("__repr__", [](const Client& client) {
        return "prodsafe.Redis('" + client.endpoint().redacted() + "')";
      });
}

}  // namespace prodsafe::python
