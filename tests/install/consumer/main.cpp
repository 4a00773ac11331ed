// Built against an installed prodsafe: starts a private Redis and pings it.
#include <iostream>

#include <prodsafe/embedded/redis_server.hpp>
#include <prodsafe/redis/client.hpp>

int main() {
  prodsafe::embedded::RedisServer server;
  prodsafe::redis::Client client(server.url());
  std::cout << client.ping() << "\n";
  return 0;
}
