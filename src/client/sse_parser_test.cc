#include "client/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pkgcast::client {
namespace {

// Everything the parser reported, in order, as text: "event <type> <id> <data>", "comment <text>", "retry <ms>".
std::vector<std::string> parse_in_pieces(std::string_view stream, const std::vector<std::size_t>& cuts) {
  std::vector<std::string> out;
  SseCallbacks cb;
  cb.on_event = [&](const SseEvent& e) {
    out.push_back("event " + e.type + " " + e.last_event_id + " " + e.data);
    return true;
  };
  cb.on_comment = [&](std::string_view c) { out.push_back("comment " + std::string(c)); };
  cb.on_retry = [&](std::uint64_t ms) { out.push_back("retry " + std::to_string(ms)); };
  SseParser parser;
  std::size_t from = 0;
  for (std::size_t cut : cuts) {
    auto r = parser.feed(stream.substr(from, cut - from), cb);
    EXPECT_TRUE(r.ok() && *r);
    from = cut;
  }
  auto r = parser.feed(stream.substr(from), cb);
  EXPECT_TRUE(r.ok() && *r);
  return out;
}

std::vector<std::string> parse(std::string_view stream) { return parse_in_pieces(stream, {}); }

// The server's stream as the contract describes it (docs/http-api.md, the event stream).
constexpr std::string_view kServerStream =
    "retry: 2000\n"
    "id: 41\n"
    ": pkgcast revision 41\n"
    "\n"
    "id: 42\n"
    "data: {\"__CLASS\":\"__InstanceModificationEvent\",\"__REVISION\":42}\n"
    "\n"
    ": heartbeat\n"
    "\n"
    "id: 43\n"
    "data: {\"__CLASS\":\"__InstanceCreationEvent\",\"__REVISION\":43}\n"
    "\n"
    "event: error\n"
    "data: {\"error\":\"WBEM_E_SHUTTING_DOWN\",\"hresult\":\"0x80041033\",\"message\":\"stopping\"}\n"
    "\n";

TEST(SseParserTest, TheServersStream) {
  EXPECT_EQ(parse(kServerStream),
            (std::vector<std::string>{
                "retry 2000", "comment pkgcast revision 41",
                "event message 42 {\"__CLASS\":\"__InstanceModificationEvent\",\"__REVISION\":42}",
                "comment heartbeat", "event message 43 {\"__CLASS\":\"__InstanceCreationEvent\",\"__REVISION\":43}",
                "event error 43 {\"error\":\"WBEM_E_SHUTTING_DOWN\",\"hresult\":\"0x80041033\",\"message\":\"stopping\"}"}));
}

TEST(SseParserTest, SplitAtEveryByteBoundaryGivesTheSameResult) {
  const auto whole = parse(kServerStream);
  for (std::size_t cut = 0; cut <= kServerStream.size(); ++cut) {
    EXPECT_EQ(parse_in_pieces(kServerStream, {cut}), whole) << "cut at " << cut;
  }
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < kServerStream.size(); ++i) every.push_back(i);
  EXPECT_EQ(parse_in_pieces(kServerStream, every), whole);
}

TEST(SseParserTest, CrLfAndCrLineEndingsAtEveryBoundary) {
  std::string crlf;
  std::string cr;
  for (char c : kServerStream) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    cr += c == '\n' ? '\r' : c;
  }
  const auto whole = parse(kServerStream);
  for (const std::string& s : {crlf, cr}) {
    EXPECT_EQ(parse(s), whole);
    for (std::size_t cut = 0; cut <= s.size(); ++cut) EXPECT_EQ(parse_in_pieces(s, {cut}), whole) << cut;
  }
}

TEST(SseParserTest, MultiLineDataJoinsWithLf) {
  EXPECT_EQ(parse("data: a\ndata:b\ndata:  c\ndata\n\n"),
            (std::vector<std::string>{"event message  a\nb\n c\n"}));
  // One trailing LF only is removed; an empty data line still dispatches.
  EXPECT_EQ(parse("data:\n\n"), (std::vector<std::string>{"event message  "}));
}

TEST(SseParserTest, NoDataNoEventAndTheIdPersists) {
  EXPECT_EQ(parse("id: 7\n\nevent: x\n\ndata: d\n\n"), (std::vector<std::string>{"event message 7 d"}));
  EXPECT_EQ(parse("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"),
            (std::vector<std::string>{"event message 7 a", "event message 7 b", "event message  c"}));
}

TEST(SseParserTest, UnknownFieldsBadRetryAndIncompleteEventsAreIgnored) {
  EXPECT_EQ(parse("foo: bar\nretry: 12x\nretry:\ndata: a\n\ndata: never dispatched\n"),
            (std::vector<std::string>{"event message  a"}));
  EXPECT_EQ(parse(":\n: \n:  two\n"), (std::vector<std::string>{"comment ", "comment ", "comment  two"}));
}

TEST(SseParserTest, ALeadingBomIsSkippedEvenWhenSplit) {
  const std::string s = "\xEF\xBB\xBF" "data: a\n\n";
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    EXPECT_EQ(parse_in_pieces(s, {cut}), (std::vector<std::string>{"event message  a"})) << cut;
  }
}

TEST(SseParserTest, ACallbackStopsTheFeed) {
  SseParser parser;
  int events = 0;
  SseCallbacks cb;
  cb.on_event = [&](const SseEvent&) { return ++events < 1; };
  auto r = parser.feed("data: 1\n\ndata: 2\n\n", cb);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(events, 1);
}

TEST(SseParserTest, AnEndlessLineIsRefused) {
  SseParser parser;
  SseCallbacks cb;
  const std::string piece(1 << 20, 'x');
  Result<bool> r = true;
  for (std::size_t i = 0; i <= SseParser::kMaxLineBytes / piece.size() && r.ok(); ++i) r = parser.feed(piece, cb);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, WbemCode::kQuotaViolation);
}

}  // namespace
}  // namespace pkgcast::client
