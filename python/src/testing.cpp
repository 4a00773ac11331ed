// prodsafe.testing.RedisServer: the private redis-server prodsafe's own tests
// use (embedded/redis_server.hpp), for users' tests.
#include <filesystem>

#include "bindings.hpp"
#include "prodsafe/embedded/redis_server.hpp"

namespace prodsafe::python {
namespace {

using embedded::RedisServer;
using embedded::RedisServerOptions;

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
  py::gil_scoped_release release;
  return std::make_unique<RedisServer>(std::move(options));
}

// Runs `action` on `server` without the GIL (each waits for the process).
template <class Action>
auto released(Action action) {
  return [action](RedisServer& server) {
    py::gil_scoped_release release;
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
             py::gil_scoped_release release;
             if (server.running()) server.kill();
             return false;
           })
      .def("close", released([](RedisServer& server) {
             if (server.running()) server.kill();
           }),
           "Kills the server (its directory goes when the object does).");
}

}  // namespace prodsafe::python
