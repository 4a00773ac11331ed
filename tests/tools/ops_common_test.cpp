// The operator commands' helpers (tools/prodsafe/ops_common.hpp): durations
// as operators type them, glob escaping for SCAN MATCH, tables, and bytes
// made printable or JSON-safe.
#include "ops_common.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace {

using prodsafe::cli::format_duration;
using prodsafe::cli::glob_escape;
using prodsafe::cli::json_bytes;
using prodsafe::cli::parse_duration;
using prodsafe::cli::printable;
using prodsafe::cli::Table;
using std::chrono::milliseconds;

TEST(OpsCommonTest, ParseDurationTakesUnitsAndRefusesTheRest) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("30s"), milliseconds(30'000));
  EXPECT_EQ(parse_duration("30"), milliseconds(30'000));
  EXPECT_EQ(parse_duration("5m"), milliseconds(300'000));
  EXPECT_EQ(parse_duration("2h"), milliseconds(7'200'000));
  EXPECT_EQ(parse_duration("1d"), milliseconds(86'400'000));
  EXPECT_EQ(parse_duration("0s"), milliseconds(0));
  for (const char* bad : {"", "s", "-1s", "1.5s", "3x", "5 m", "1s2", "99999999999999999999d",
                          "9223372036854775807d"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
}

TEST(OpsCommonTest, FormatDurationIsShort) {
  EXPECT_EQ(format_duration(milliseconds(850)), "850ms");
  EXPECT_EQ(format_duration(milliseconds(12'500)), "12.5s");
  EXPECT_EQ(format_duration(milliseconds(200'000)), "3m20s");
  EXPECT_EQ(format_duration(milliseconds(7'500'000)), "2h05m");
  EXPECT_EQ(format_duration(milliseconds(273'600'000)), "3d04h");
  EXPECT_EQ(format_duration(milliseconds(-1500)), "-1.5s");
  // The most negative count has no positive counterpart: negating it
  // overflowed and recursed without end.
  EXPECT_EQ(format_duration(milliseconds(std::numeric_limits<std::int64_t>::min())).front(), '-');
}

TEST(OpsCommonTest, GlobEscapeMakesPatternCharactersLiteral) {
  EXPECT_EQ(glob_escape("tenant:"), "tenant:");
  EXPECT_EQ(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
}

TEST(OpsCommonTest, TablePadsColumnsToTheWidestCell) {
  Table table({"A", "LONGER"});
  table.add({"wide cell", "x"});
  table.add({"y"});
  EXPECT_EQ(table.str(), "  A          LONGER\n  wide cell  x\n  y\n");
}

TEST(OpsCommonTest, BytesArePrintableAndJsonSafe) {
  EXPECT_EQ(printable("ok\n\x01\xff"), "ok\\n\\x01\\xff");
  EXPECT_EQ(printable("abcdef", 3), "abc...");
  EXPECT_EQ(json_bytes("caf\xc3\xa9").get<std::string>(), "caf\xc3\xa9");
  EXPECT_EQ(json_bytes("\xff\xfe").get<std::string>(), "\\xff\\xfe");
  EXPECT_EQ(json_bytes("\xed\xa0\x80").get<std::string>(), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_NO_THROW((void)nlohmann::json(json_bytes("\xc0\xaf")).dump());         // overlong
}

}  // namespace
