// What the dispatcher reads from an answer and writes to its logs: the
// Retry-After header in both its forms, and the excerpt of a refusal's body.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "log_excerpt.hpp"
#include "retry_after.hpp"

namespace prodsafe::alerts::detail {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Sun, 06 Nov 1994 08:49:37 GMT
const auto kDate = std::chrono::system_clock::time_point(784111777s);

TEST(RetryAfterTest, DeltaSecondsAreTheWait) {
  EXPECT_EQ(parse_retry_after("2", kDate), milliseconds(2000));
  EXPECT_EQ(parse_retry_after(" 120\t", kDate), milliseconds(120000));
  EXPECT_EQ(parse_retry_after("0", kDate), milliseconds(0));
  EXPECT_EQ(parse_retry_after("99999999999999999999999", kDate),
            milliseconds(std::chrono::seconds(10LL * 365 * 24 * 3600)))
      << "saturates instead of overflowing";
}

TEST(RetryAfterTest, HttpDatesInEachFormCountFromNow) {
  for (const char* form : {"Sun, 06 Nov 1994 08:49:47 GMT", "Sunday, 06-Nov-94 08:49:47 GMT",
                           "Sun Nov  6 08:49:47 1994"}) {
    EXPECT_EQ(parse_retry_after(form, kDate), milliseconds(10000)) << form;
  }
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", kDate), milliseconds(0))
      << "a date already past: retry at once";
}

// Found by retry_after_fuzz: a date beyond system_clock's range (about the
// year 2262) overflowed the nanoseconds it was converted to.
TEST(RetryAfterTest, ADateFarInTheFutureSaturatesInsteadOfOverflowing) {
  const milliseconds cap = std::chrono::seconds(10LL * 365 * 24 * 3600);
  EXPECT_EQ(parse_retry_after("Fri, 01 Jan 6092 00:00:10 GMT", kDate), cap);
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", kDate), cap);
  EXPECT_EQ(parse_retry_after("Wed, 06 Nov 2050 08:49:37 GMT", kDate), cap);
  EXPECT_EQ(parse_retry_after("Mon, 06 Nov 1995 08:49:37 GMT", kDate),
            milliseconds(std::chrono::hours(24 * 365)))
      << "a date within the cap is still exact";
}

TEST(RetryAfterTest, AnythingElseIsNotAWait) {
  for (const char* value : {"", "soon", "-5", "1.5", "2 s", "Sun, 06 Nov 1994 08:49:37",
                            "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
                            "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT"}) {
    EXPECT_FALSE(parse_retry_after(value, kDate).has_value()) << value;
  }
}

TEST(LogExcerptTest, SecretsAreRedactedAndControlsEscaped) {
  const std::string body = "key ABCDEF123456 refused\n\ttab \\ \x1b[0m \xc3\xa9 \xe2\x80\xae \xff";
  EXPECT_EQ(log_excerpt(body, false, {"ABCDEF123456"}),
            R"(key *** refused\n\ttab \\ \x1b[0m é \u{202e} \xff)");
}

TEST(LogExcerptTest, OverlongAndSurrogateSequencesAreEscapedByteByByte) {
  EXPECT_EQ(log_excerpt("\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80", false, {}),
            R"(\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80)");
}

TEST(LogExcerptTest, ALongAnswerIsCutAndSaysSo) {
  const std::string excerpt = log_excerpt(std::string(5000, 'a'), false, {});
  EXPECT_EQ(excerpt.substr(0, 1024), std::string(1024, 'a'));
  EXPECT_EQ(excerpt.substr(1024), "... [cut; the answer has 5000 bytes]");
}

TEST(LogExcerptTest, ASecretCutOffAtTheEndOfWhatWasReadIsNotShown) {
  // Only the first bytes of a longer answer were kept, ending in half a key.
  const std::string excerpt = log_excerpt("error: key ABCDEF", true, {"ABCDEF123456"});
  EXPECT_EQ(excerpt.find("ABC"), std::string::npos) << excerpt;
  EXPECT_NE(excerpt.find("error:"), std::string::npos) << excerpt;
}

TEST(LogExcerptTest, UrlSecretsCoverPathQueryAndCredentials) {
  const std::vector<std::string> secrets = url_secrets(
      "https://user:pa55word@hooks.example.com/services/T0/B0/TOKENSECRET42?key=QUERYSECRET1");
  for (const char* expected : {"/services/T0/B0/TOKENSECRET42?key=QUERYSECRET1", "TOKENSECRET42",
                               "QUERYSECRET1", "user:pa55word", "pa55word"}) {
    EXPECT_NE(std::find(secrets.begin(), secrets.end(), expected), secrets.end()) << expected;
  }
  EXPECT_EQ(std::find(secrets.begin(), secrets.end(), "T0"), secrets.end())
      << "short segments are not secrets (and would blank common words)";
}

// Found by webhook_answer_fuzz: an empty URL, or empty credentials, gave an
// empty "secret" (harmless to log_excerpt, which skips short ones, but a
// secret list should hold secrets).
TEST(LogExcerptTest, UrlSecretsAreNeverEmpty) {
  for (const char* url : {"", "https://@hooks.example.com/x", "http://:@h/"}) {
    for (const std::string& secret : url_secrets(url)) {
      EXPECT_FALSE(secret.empty()) << "from '" << url << "'";
    }
  }
}

}  // namespace
}  // namespace prodsafe::alerts::detail
