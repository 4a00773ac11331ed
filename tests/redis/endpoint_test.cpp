#include "prodsafe/redis/endpoint.hpp"

#include <string>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::redis {
namespace {

using Transport = Endpoint::Transport;

struct Good {
  const char* url;
  Transport transport;
  const char* host;
  int port;
  const char* socket_path;
  const char* user;
  const char* password;
  int db;
};

TEST(ParseUrlTest, AcceptsEveryDocumentedForm) {
  const Good cases[] = {
      {"redis://localhost", Transport::kTcp, "localhost", 6379, "", "", "", 0},
      {"redis://127.0.0.1:6380", Transport::kTcp, "127.0.0.1", 6380, "", "", "", 0},
      {"redis://127.0.0.1:6380/", Transport::kTcp, "127.0.0.1", 6380, "", "", "", 0},
      {"redis://h:1/15", Transport::kTcp, "h", 1, "", "", "", 15},
      {"redis://:secret@h", Transport::kTcp, "h", 6379, "", "", "secret", 0},
      {"redis://alice:secret@h:7000/2", Transport::kTcp, "h", 7000, "", "alice", "secret", 2},
      {"redis://alice:p%40ss%3Aw%2Fd@h", Transport::kTcp, "h", 6379, "", "alice", "p@ss:w/d", 0},
      {"redis://:p@ss@h:65535", Transport::kTcp, "h", 65535, "", "", "p@ss", 0},
      {"redis://[::1]:6390/3", Transport::kTcp, "::1", 6390, "", "", "", 3},
      {"redis://[::1]", Transport::kTcp, "::1", 6379, "", "", "", 0},
      {"unix:///run/redis.sock", Transport::kUnix, "", 0, "/run/redis.sock", "", "", 0},
      {"unix:///run/redis.sock?db=4", Transport::kUnix, "", 0, "/run/redis.sock", "", "", 4},
      {"unix://bob:pw@/tmp/r.sock?db=1", Transport::kUnix, "", 0, "/tmp/r.sock", "bob", "pw", 1},
  };
  for (const Good& c : cases) {
    SCOPED_TRACE(c.url);
    const Endpoint e = parse_url(c.url);
    EXPECT_EQ(e.transport, c.transport);
    if (c.transport == Transport::kTcp) {
      EXPECT_EQ(e.host, c.host);
      EXPECT_EQ(e.port, c.port);
    } else {
      EXPECT_EQ(e.socket_path, c.socket_path);
    }
    EXPECT_EQ(e.user, c.user);
    EXPECT_EQ(e.password, c.password);
    EXPECT_EQ(e.db, c.db);
  }
}

struct Bad {
  std::string url;
  const char* says;  // a fragment the error message must contain
};

TEST(ParseUrlTest, RefusesMalformedUrlsNamingTheProblem) {
  const Bad cases[] = {
      {"", "empty"},
      {"localhost:6379", "scheme is missing"},
      {"http://localhost", "unsupported scheme 'http'"},
      {"rediss://", "host is missing"},
      {"rediss://h:99999", "port '99999'"},
      {"rediss://h/0?ssl_cert_reqs=none", "query parameters are not supported"},
      {"rediss://::1:6380", "IPv6 host must be written in brackets"},
      {"rediss:///run/redis.sock", "a unix socket has no TLS form"},
      {"rediss://:@h", "password after ':' is empty"},
      {"unixs:///run/redis.sock", "use redis://, rediss:// (TLS), unix://, redis-sentinel://"},
      {"redis://", "host is missing"},
      {"redis://:6379", "host is missing"},
      {"redis://h:", "port '' is not a number"},
      {"redis://h:abc", "port 'abc' is not a number"},
      {"redis://h:0", "port '0'"},
      {"redis://h:65536", "port '65536'"},
      {"redis://h:-1", "port '-1'"},
      {"redis://h:6379/x", "database 'x'"},
      {"redis://h:6379/-2", "database '-2'"},
      {"redis://h:6379/99999999999", "database '99999999999'"},
      {"redis://h/0?timeout=1", "query parameters are not supported"},
      {"redis://[::1", "closing ']'"},
      {"redis://[::1]x", "after the IPv6 host"},
      {"redis://::1:6379", "IPv6 host must be written in brackets"},
      {"redis://secret@h", "credentials must be written"},
      {"redis://alice:@h", "password after ':' is empty"},
      {"redis://alice:bad%zzpw@h", "percent-encoding in the password"},
      {"redis://alice:bad%4@h", "percent-encoding in the password"},
      {"unix://", "socket path must be absolute"},
      {"unix://relative.sock", "socket path must be absolute"},
      {"unix:///", "socket path is missing"},
      {"unix:///tmp/r.sock?db=x", "database 'x'"},
      {"unix:///tmp/r.sock?password=x", "unknown query parameter 'password'"},
      {"unix:///" + std::string(120, 'a'), "unix sockets allow at most 107"},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.url);
    try {
      (void)parse_url(c.url);
      ADD_FAILURE() << "accepted";
    } catch (const InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find(c.says), std::string::npos) << error.what();
    }
  }
}

TEST(ParseUrlTest, ErrorsNeverShowThePassword) {
  for (const char* url : {"redis://alice:hunter2@h:bad", "redis://:hunter2@h/x",
                          "redis://hunter2@h", "rediss://:hunter2@h:x", "rediss://u:hunter2@/sock",
                          "ftp://u:hunter2@h", "redis://u:hunter2%zz@h"}) {
    try {
      (void)parse_url(url);
      ADD_FAILURE() << url << " accepted";
    } catch (const InvalidArgument& error) {
      EXPECT_EQ(std::string(error.what()).find("hunter2"), std::string::npos) << error.what();
    }
  }
}

// rediss:// is redis:// over TLS: the same authority, credentials and
// database, with Endpoint::tls set. No other form sets it.
TEST(ParseUrlTest, RedissIsTheTcpFormWithTls) {
  const Good cases[] = {
      {"rediss://localhost", Transport::kTcp, "localhost", 6379, "", "", "", 0},
      {"rediss://redis.example.com:6380/2", Transport::kTcp, "redis.example.com", 6380, "", "", "",
       2},
      {"rediss://:secret@10.0.0.5:6380", Transport::kTcp, "10.0.0.5", 6380, "", "", "secret", 0},
      {"rediss://alice:p%40ss@h:7000/3", Transport::kTcp, "h", 7000, "", "alice", "p@ss", 3},
      {"rediss://[::1]:6390/1", Transport::kTcp, "::1", 6390, "", "", "", 1},
      {"rediss://bob:pw@[2001:db8::7]", Transport::kTcp, "2001:db8::7", 6379, "", "bob", "pw", 0},
  };
  for (const Good& c : cases) {
    SCOPED_TRACE(c.url);
    const Endpoint e = parse_url(c.url);
    EXPECT_TRUE(e.tls);
    EXPECT_EQ(e.transport, c.transport);
    EXPECT_EQ(e.host, c.host);
    EXPECT_EQ(e.port, c.port);
    EXPECT_EQ(e.user, c.user);
    EXPECT_EQ(e.password, c.password);
    EXPECT_EQ(e.db, c.db);
  }
  for (const char* url : {"redis://localhost:6380", "redis://[::1]", "unix:///run/redis.sock",
                          "unix://:pw@/tmp/r.sock?db=2"}) {
    EXPECT_FALSE(parse_url(url).tls) << url;
  }
}

TEST(RedactTest, RedactsPasswordsAndKeepsTheRest) {
  EXPECT_EQ(redact_url("redis://alice:hunter2@h:6379/1"), "redis://alice:***@h:6379/1");
  EXPECT_EQ(redact_url("redis://:hunter2@h"), "redis://:***@h");
  EXPECT_EQ(redact_url("redis://hunter2@h"), "redis://:***@h");
  EXPECT_EQ(redact_url("redis://:p@ss@h"), "redis://:***@h");
  EXPECT_EQ(redact_url("redis://h:6379"), "redis://h:6379");
  EXPECT_EQ(redact_url("rediss://alice:hunter2@h:6380/1"), "rediss://alice:***@h:6380/1");
  EXPECT_EQ(redact_url("rediss://:hunter2@[::1]:6380"), "rediss://:***@[::1]:6380");
  EXPECT_EQ(redact_url("rediss://h:6380"), "rediss://h:6380");
  EXPECT_EQ(redact_url("not a url"), "not a url");
}

TEST(RedactTest, EndpointRedactedRoundTrips) {
  const Endpoint e = parse_url("redis://alice:hunter2@10.0.0.5:7000/3");
  EXPECT_EQ(e.redacted(), "redis://alice:***@10.0.0.5:7000/3");
  EXPECT_EQ(parse_url("redis://[::1]:6390").redacted(), "redis://[::1]:6390");
  EXPECT_EQ(parse_url("unix://:pw@/tmp/r.sock?db=2").redacted(), "unix://:***@/tmp/r.sock?db=2");
  EXPECT_EQ(parse_url("redis://h").redacted(), "redis://h:6379");
  EXPECT_EQ(parse_url("rediss://h").redacted(), "rediss://h:6379");
  EXPECT_EQ(parse_url("rediss://alice:hunter2@h:6380/3").redacted(), "rediss://alice:***@h:6380/3");
  EXPECT_EQ(parse_url("rediss://:hunter2@[::1]:6380").redacted(), "rediss://:***@[::1]:6380");
  for (const char* url : {"rediss://alice:hunter2@h:6380/3", "rediss://[::1]:6380/1"}) {
    const Endpoint parsed = parse_url(url);
    const Endpoint again = parse_url(parsed.redacted());
    EXPECT_TRUE(again.tls) << url;
    EXPECT_EQ(again.host, parsed.host) << url;
    EXPECT_EQ(again.port, parsed.port) << url;
    EXPECT_EQ(again.db, parsed.db) << url;
  }
}

}  // namespace
}  // namespace prodsafe::redis
