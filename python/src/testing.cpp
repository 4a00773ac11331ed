// prodsafe.testing.RedisServer: the private redis-server prodsafe's own tests
// use (embedded/redis_server.hpp), for users' tests.
#include <filesystem>

#include "bindings.hpp"
#include "prodsafe/embedded/redis_cluster.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/embedded/sentinel_topology.hpp"

namespace prodsafe::python {
namespace {

using embedded::RedisCluster;
using embedded::RedisClusterOptions;
using embedded::RedisServer;
using embedded::RedisServerOptions;
using embedded::SentinelTopology;
using embedded::SentinelTopologyOptions;

std::unique_ptr<RedisServer> make_server(const py::object& config, const py::object& unix_socket,
                                         const py::object& startup_timeout,
                                         const py::object& executable) {
  RedisServerOptions options;
  if (!config.is_none()) {
    if (py::isinstance<py::str>(config) || !py::isinstance<py::iterable>(config))
      raise_wrong_type("config", "a list of redis.conf lines", config);
    for (const py::handle line : config) options.config.push_back(str_arg(line, "a config line"));
  }
  options.unix_socket = bool_arg(unix_socket, "unix_socket");
  options.startup_timeout = duration_arg(startup_timeout, "startup_timeout");
  options.executable = str_arg(executable, "executable");
  gil_release release;
  return std::make_unique<RedisServer>(std::move(options));
}

int count_arg(py::handle value, std::string_view what, int least) {
  const long long count = int_arg(value, what);
  if (count < least || count > 16)
    raise_python(InvalidArgument(std::string(what) + " must be " + std::to_string(least) +
                                 " to 16, not " + std::to_string(count)));
  return static_cast<int>(count);
}

std::unique_ptr<SentinelTopology> make_topology(const py::object& replicas,
                                                const py::object& sentinels,
                                                const py::object& master_name,
                                                const py::object& password) {
  SentinelTopologyOptions options;
  options.replicas = count_arg(replicas, "replicas", 0);
  options.sentinels = count_arg(sentinels, "sentinels", 1);
  options.master_name = str_arg(master_name, "master_name");
  if (!password.is_none()) options.password = str_arg(password, "password");
  gil_release release;
  return std::make_unique<SentinelTopology>(std::move(options));
}

std::unique_ptr<RedisCluster> make_cluster(const py::object& masters,
                                           const py::object& replicas_per_master) {
  RedisClusterOptions options;
  options.masters = count_arg(masters, "masters", 3);
  options.replicas_per_master = count_arg(replicas_per_master, "replicas_per_master", 0);
  gil_release release;
  return std::make_unique<RedisCluster>(std::move(options));
}

// Runs `action` on `server` without the GIL (each waits for the process).
template <class Action>
auto released(Action action) {
  return [action](RedisServer& server) {
    gil_release release;
    action(server);
  };
}

}  // namespace

void bind_testing(py::module_& m) {
  py::class_<RedisServer>(m, "RedisServer", R"doc(
A private redis-server for tests: started on a free loopback port in a
temporary directory, killed and its directory removed when closed (or
garbage-collected, or at the end of a with block).

    RedisServer(config=None, unix_socket=False, startup_timeout=10.0,
                executable="redis-server")

config: extra redis.conf lines ("appendonly yes", ...), written after
prodsafe's defaults (bind 127.0.0.1, no RDB snapshots, no AOF).
)doc")
      .def(py::init(&make_server), py::arg("config") = py::none(), py::arg("unix_socket") = false,
           py::arg("startup_timeout") = 10.0, py::arg("executable") = "redis-server")
      .def_property_readonly("url", &RedisServer::url)
      .def_property_readonly("unix_url", &RedisServer::unix_url)
      .def_property_readonly("port", &RedisServer::port)
      .def_property_readonly("host", [](const RedisServer&) { return "127.0.0.1"; })
      .def_property_readonly("pid", &RedisServer::pid)
      .def_property_readonly("running", &RedisServer::running)
      .def_property_readonly("directory",
                             [](const RedisServer& server) { return server.directory().string(); })
      .def("kill", released([](RedisServer& server) { server.kill(); }), "SIGKILL, as a crash.")
      .def("stop", released([](RedisServer& server) { server.stop(); }),
           "SIGTERM and a clean shutdown.")
      .def("pause", released([](RedisServer& server) { server.pause(); }),
           "SIGSTOP: the server keeps its sockets but answers nothing.")
      .def("resume", released([](RedisServer& server) { server.resume(); }), "SIGCONT.")
      .def("restart", released([](RedisServer& server) { server.restart(); }),
           "Starts the server again on the same port and data directory.")
      .def("log_tail", &RedisServer::log_tail, py::arg("lines") = 20)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__",
           [](RedisServer& server, const py::args&) {
             gil_release release;
             if (server.running()) server.kill();
             return false;
           })
      .def("close", released([](RedisServer& server) {
             if (server.running()) server.kill();
           }),
           "Kills the server (its directory goes when the object does).");

  py::class_<SentinelTopology>(m, "SentinelTopology", R"doc(
A private Sentinel topology for tests: a master, its replicas and the
sentinels watching it, each a redis-server on a free loopback port; the
constructor waits until all agree. Every server is killed and its directory
removed when the object is collected (del it, or let a fixture end).

    SentinelTopology(replicas=2, sentinels=3, master_name="prodsafe", password=None)
)doc")
      .def(py::init(&make_topology), py::arg("replicas") = 2, py::arg("sentinels") = 3,
           py::arg("master_name") = "prodsafe", py::arg("password") = py::none())
      .def_property_readonly("url", &SentinelTopology::url,
                             "redis-sentinel://127.0.0.1:<p1>,.../0?master=<name>")
      .def_property_readonly("master_name", &SentinelTopology::master_name)
      .def_property_readonly("sentinel_endpoints", &SentinelTopology::sentinel_endpoints,
                             "\"127.0.0.1:<port>\" of each sentinel.")
      .def(
          "master",
          [](SentinelTopology& topology) -> RedisServer& {
            gil_release release;
            return topology.master();
          },
          py::return_value_policy::reference_internal, "The data node the sentinels name now.")
      .def(
          "wait_for_failover",
          [](SentinelTopology& topology, const RedisServer& old_master,
             const py::object& timeout) -> RedisServer& {
            const auto limit = duration_arg(timeout, "timeout");
            gil_release release;
            return topology.wait_for_failover(old_master, limit);
          },
          py::arg("old_master"), py::arg("timeout") = 30.0,
          py::return_value_policy::reference_internal,
          "Waits until the sentinels agree on a new master; returns it.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](const py::object&, const py::args&) { return false; });

  py::class_<RedisCluster>(m, "RedisCluster", R"doc(
A private Redis Cluster for tests: `masters` masters (at least 3) with
`replicas_per_master` replicas each, every node a redis-server on free
loopback ports; the constructor waits until every slot is served. Every
node is killed and its directory removed when the object is collected.

    RedisCluster(masters=3, replicas_per_master=1)
)doc")
      .def(py::init(&make_cluster), py::arg("masters") = 3, py::arg("replicas_per_master") = 1)
      .def_property_readonly("url", &RedisCluster::url, "redis-cluster://127.0.0.1:<p1>,...")
      .def_property_readonly("node_count", &RedisCluster::node_count)
      .def(
          "node",
          [](RedisCluster& cluster, std::size_t index) -> RedisServer& {
            if (index >= cluster.node_count())
              raise_python(InvalidArgument("no node " + std::to_string(index)));
            return cluster.node(index);
          },
          py::arg("index"), py::return_value_policy::reference_internal)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](const py::object&, const py::args&) { return false; });
}

}  // namespace prodsafe::python
