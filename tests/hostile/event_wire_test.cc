// GET /api/v1/events on the wire, against the real `pkgcast server` on loopback (docs/events.md "On the wire",
// docs/http-api.md): HEAD answers the GET's headers without subscribing. Raw sockets, so the test sees the bytes a
// browser or curl would (headers, chunk framing); every wait is bounded. A stopping server ends each stream with its
// error event and the terminating chunk. A browser's EventSource authenticates with ?access_token=.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "raw_socket.h"
#include "server_fixture.h"

namespace pkgcast::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kStarted = ": pkgcast revision";
constexpr std::string_view kQuery = "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'";

// The head of a raw answer (up to the blank line), and its body.
std::string head_of(const std::string& raw) { return raw.substr(0, raw.find("\r\n\r\n")); }
std::string body_of(const std::string& raw) {
  const auto end = raw.find("\r\n\r\n");
  return end == std::string::npos ? "" : raw.substr(end + 4);
}
bool has_field(const std::string& raw, std::string_view field) {
  return head_of(raw).find(std::string("\r\n") + std::string(field)) != std::string::npos;
}

class EventWireTest : public ServerTest {
 protected:
  std::uint16_t port() const { return port_of(url_); }

  void restart(const std::string& toml) {
    ASSERT_EQ(stop_server(), 0);
    const std::string path = dir_.path() + "/events.toml";
    std::ofstream(path) << toml;
    start_server({"--config", path});
  }

  // A request for the event stream of `query`; `auth` is the header line(s) to send ("" for none).
  static std::string events_request(std::string_view method, std::string_view query, const std::string& auth,
                                    const std::string& extra_query = "", bool close = false) {
    return std::string(method) + " /api/v1/events?query=" + url_encode(query) + extra_query +
           " HTTP/1.1\r\nHost: x\r\n" + auth + (close ? "Connection: close\r\n" : "") + "\r\n";
  }
  std::string bearer() const { return "Authorization: Bearer " + admin_token() + "\r\n"; }
};

TEST_P(EventWireTest, HeadAnswersTheGetsHeadersWithoutSubscribing) {
  restart("max_subscriptions = 1\n");
  // The one subscription the server allows is taken: a HEAD that subscribed would be refused.
  RawSocket stream(port());
  ASSERT_TRUE(stream.send(events_request("GET", kQuery, bearer())));
  ASSERT_TRUE(stream.read_until(kStarted, 10s));

  RawSocket head(port());
  ASSERT_TRUE(head.send(events_request("HEAD", kQuery, bearer(), "", /*close=*/true)));
  const std::string answer = head.read_until_close(10s);
  EXPECT_EQ(status_of(answer), 200) << answer;
  EXPECT_TRUE(has_field(answer, "Content-Type: text/event-stream")) << answer;
  EXPECT_TRUE(has_field(answer, "Cache-Control: no-cache, no-transform")) << answer;
  // The GET's body is chunked: it names no length, and neither does its HEAD (nor a chunked body it will not send).
  EXPECT_FALSE(has_field(answer, "Content-Length")) << answer;
  EXPECT_FALSE(has_field(answer, "Transfer-Encoding")) << answer;
  EXPECT_EQ(body_of(answer), "") << answer;

  // A second GET is refused: the limit is one, and the first stream still holds it.
  RawSocket second(port());
  ASSERT_TRUE(second.send(events_request("GET", kQuery, bearer(), "", /*close=*/true)));
  EXPECT_EQ(status_of(second.read_until_close(10s)), 503);

  // A bad query is the GET's error: the same status, and the length of the same error body.
  for (const std::string_view bad : {std::string_view("SELECT * FORM x"), std::string_view("SELECT * FROM SMS_Package")}) {
    RawSocket get(port());
    ASSERT_TRUE(get.send(events_request("GET", bad, bearer(), "", /*close=*/true)));
    const std::string got = get.read_until_close(10s);
    RawSocket head_bad(port());
    ASSERT_TRUE(head_bad.send(events_request("HEAD", bad, bearer(), "", /*close=*/true)));
    const std::string headed = head_bad.read_until_close(10s);
    EXPECT_EQ(status_of(got), 400) << got;
    EXPECT_EQ(status_of(headed), status_of(got)) << headed;
    EXPECT_TRUE(has_field(headed, "Content-Length: " + std::to_string(body_of(got).size()))) << headed << got;
    EXPECT_EQ(body_of(headed), "") << headed;
  }
  // And a resume the journal cannot serve (beyond the last revision) likewise.
  RawSocket head_since(port());
  ASSERT_TRUE(head_since.send(events_request("HEAD", kQuery, bearer(), "&since=999999", /*close=*/true)));
  EXPECT_EQ(status_of(head_since.read_until_close(10s)), 400);
}

// docs/events.md: "When the server ends a subscription (it is stopping, ...), it sends one `event: error` whose data
// is the WBEM error object, then ends the body". SIGTERM, as an init system stops it, with streams open.
TEST_P(EventWireTest, AStoppingServerEndsEachStreamWithTheErrorEventAndTheLastChunk) {
  std::vector<RawSocket> streams;
  for (int i = 0; i < 3; ++i) {
    streams.emplace_back(port());
    ASSERT_TRUE(streams.back().send(events_request("GET", kQuery, bearer())));
    ASSERT_TRUE(streams.back().read_until(kStarted, 10s));
  }
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(stop_server(), 0);
  // Well within the grace period (shutdown_grace_seconds, 10): every client took its last words at once.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  for (auto& s : streams) {
    const std::string rest = s.read_until_close(10s);
    const auto at = rest.find("event: error\ndata: {");
    ASSERT_NE(at, std::string::npos) << rest;
    const std::string data = rest.substr(at + 19, rest.find('\n', at + 19) - (at + 19));
    const auto error = nlohmann::json::parse(data, nullptr, false);
    ASSERT_TRUE(error.is_object()) << data;
    EXPECT_EQ(error.value("error", ""), "WBEM_E_SHUTTING_DOWN") << data;
    EXPECT_EQ(error.value("hresult", ""), "0x80041033") << data;
    // The chunked body ends with its terminating chunk: complete, not cut.
    constexpr std::string_view kLastChunk = "\r\n0\r\n\r\n";
    ASSERT_GE(rest.size(), kLastChunk.size()) << rest;
    EXPECT_EQ(rest.substr(rest.size() - kLastChunk.size()), kLastChunk) << rest;
  }
}

// RFC 6750 section 2.3 for a browser's EventSource, which cannot send a header: ?access_token= on the event stream,
// checked as the header is (an unknown or revoked token is 401), never with the header too, never elsewhere, and
// never written to the server's log or metrics.
TEST_P(EventWireTest, AnAccessTokenInTheQueryOpensTheEventStream) {
  auto created = cli({"token", "create", "--role", "read-only", "--description", "event-source"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string reader = created.out.substr(0, created.out.find('\n'));
  ASSERT_EQ(reader.rfind("pkc_", 0), 0u) << created.out;
  const std::string as_reader = "&access_token=" + url_encode(reader);

  RawSocket stream(port());
  ASSERT_TRUE(stream.send(events_request("GET", kQuery, "", as_reader)));
  const auto started = stream.read_until(kStarted, 10s);
  ASSERT_TRUE(started) << "no stream";
  EXPECT_EQ(status_of(*started), 200) << *started;
  const auto made = cli({"package", "create", "--name", "Seen through EventSource"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto event = stream.read_until("Seen through EventSource", 10s);
  ASSERT_TRUE(event) << "no event";
  EXPECT_NE(event->find("id: "), std::string::npos) << *event;

  auto status_for = [&](const std::string& request) {
    RawSocket s(port());
    if (!s.send(request)) return 0;
    return status_of(s.read_until_close(10s));
  };
  EXPECT_EQ(status_for(events_request("GET", kQuery, "", "&access_token=pkc_wrong", true)), 401);
  EXPECT_EQ(status_for(events_request("HEAD", kQuery, "", as_reader, true)), 200);
  EXPECT_EQ(status_for(events_request("GET", kQuery, bearer(), as_reader, true)), 400);  // both at once
  // Not on other routes, nor on POST.
  EXPECT_EQ(status_for("GET /api/v1/packages?access_token=" + reader + " HTTP/1.1\r\nHost: x\r\nConnection: "
                       "close\r\n\r\n"),
            400);
  EXPECT_EQ(status_for("POST /api/v1/query?access_token=" + reader +
                       " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"),
            400);

  // Revoked: the open stream ends, and the token opens no other.
  auto listed = cli({"--json", "token", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  auto tokens = nlohmann::json::parse(listed.out, nullptr, false);
  if (tokens.is_object() && tokens.contains("tokens")) tokens = tokens["tokens"];
  ASSERT_TRUE(tokens.is_array()) << listed.out;
  std::string id;
  for (const auto& t : tokens) {
    if (t.value("description", "") == "event-source") id = t.value("id", "");
  }
  ASSERT_FALSE(id.empty()) << listed.out;
  ASSERT_EQ(cli({"token", "revoke", id}).exit_code, 0);
  EXPECT_TRUE(stream.closed_within(10s));
  EXPECT_EQ(status_for(events_request("GET", kQuery, "", as_reader, true)), 401);

  // The token is in no log line and no metric.
  RawSocket metrics(port());
  ASSERT_TRUE(metrics.send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string exposed = metrics.read_until_close(10s);
  EXPECT_EQ(status_of(exposed), 200);
  EXPECT_EQ(exposed.find(reader), std::string::npos);
  EXPECT_EQ(exposed.find("access_token"), std::string::npos);
  const std::string log = server_->error_output();
  EXPECT_EQ(log.find(reader), std::string::npos) << log;
  EXPECT_EQ(log.find(reader.substr(4)), std::string::npos) << log;
}

// A token that expires ends the streams it opened, as a revocation does: the stream says why in an error event and
// ends, and the token opens no other.
TEST_P(EventWireTest, AnExpiredTokenEndsItsOpenStreams) {
  auto created = cli({"token", "create", "--role", "read-only", "--expires-in", "3s"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string reader = created.out.substr(0, created.out.find('\n'));
  ASSERT_EQ(reader.rfind("pkc_", 0), 0u) << created.out;
  const auto opened_at = std::chrono::steady_clock::now();
  RawSocket stream(port());
  ASSERT_TRUE(stream.send(events_request("GET", kQuery, "Authorization: Bearer " + reader + "\r\n")));
  const auto started = stream.read_until(kStarted, 10s);
  ASSERT_TRUE(started) << "no stream";
  ASSERT_EQ(status_of(*started), 200) << *started;
  ASSERT_EQ(cli({"package", "create", "--name", "Before the expiry"}).exit_code, 0);
  ASSERT_TRUE(stream.read_until("Before the expiry", 10s)) << "no event before the expiry";
  const auto ended = stream.read_until("\r\n0\r\n\r\n", 20s);  // the chunked body's last chunk
  ASSERT_TRUE(ended) << "the stream did not end";
  const std::string& rest = *ended;
  EXPECT_GT(std::chrono::steady_clock::now() - opened_at, 2s);
  EXPECT_NE(rest.find("event: error"), std::string::npos) << rest;
  EXPECT_NE(rest.find("WBEM_E_ACCESS_DENIED"), std::string::npos) << rest;
  EXPECT_NE(rest.find("expired"), std::string::npos) << rest;
  RawSocket again(port());
  ASSERT_TRUE(again.send(events_request("GET", kQuery, "Authorization: Bearer " + reader + "\r\n", "", true)));
  EXPECT_EQ(status_of(again.read_until_close(10s)), 401);
}

// The revisions of the events of a stream, once `n` of them have arrived (fewer at the timeout).
std::vector<std::uint64_t> first_ids(RawSocket& stream, std::size_t n) {
  std::string seen;
  std::vector<std::uint64_t> ids;
  while (ids.size() < n) {
    auto more = stream.read_until("\n\n", 10s);
    if (!more) break;
    seen += *more;
    ids.clear();
    for (auto at = seen.find("\nid: "); at != std::string::npos; at = seen.find("\nid: ", at + 1)) {
      const auto end = seen.find('\n', at + 5);
      if (end == std::string::npos) break;
      // An event's id, followed by its data; not the opening block's id, which has none.
      if (seen.compare(end + 1, 6, "data: ") != 0) continue;
      ids.push_back(std::stoull(seen.substr(at + 5, end - (at + 5))));
    }
  }
  return ids;
}

// docs/events.md: Last-Event-ID resumes as since= does; a browser's EventSource reconnects with the URL it was opened
// with (since= in it) and the header naming the last event it got, so with both the later revision is used and
// nothing is delivered twice. A Last-Event-ID that is not a revision is refused like a bad since=.
TEST_P(EventWireTest, LastEventIdResumesAndTheLaterOfItAndSinceIsUsed) {
  for (int i = 0; i < 3; ++i) {
    const auto made = cli({"package", "create", "--name", "P" + std::to_string(i)});
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }
  RawSocket all(port());
  ASSERT_TRUE(all.send(events_request("GET", kQuery, bearer(), "&since=0")));
  const std::vector<std::uint64_t> ids = first_ids(all, 3);
  ASSERT_EQ(ids.size(), 3u);

  const std::string after_first = "Last-Event-ID: " + std::to_string(ids[0]) + "\r\n";
  RawSocket header_only(port());
  ASSERT_TRUE(header_only.send(events_request("GET", kQuery, bearer() + after_first)));
  EXPECT_EQ(first_ids(header_only, 2), (std::vector<std::uint64_t>{ids[1], ids[2]}));

  const std::string after_second = "Last-Event-ID: " + std::to_string(ids[1]) + "\r\n";
  RawSocket both(port());
  ASSERT_TRUE(both.send(events_request("GET", kQuery, bearer() + after_second, "&since=" + std::to_string(ids[0]))));
  EXPECT_EQ(first_ids(both, 1), (std::vector<std::uint64_t>{ids[2]}));
  RawSocket both_other_way(port());
  ASSERT_TRUE(
      both_other_way.send(events_request("GET", kQuery, bearer() + after_first, "&since=" + std::to_string(ids[1]))));
  EXPECT_EQ(first_ids(both_other_way, 1), (std::vector<std::uint64_t>{ids[2]}));

  // The opening block gives the start revision as an id without data, so that an EventSource that reconnects before
  // any event came sends it as Last-Event-ID.
  RawSocket fresh(port());
  ASSERT_TRUE(fresh.send(events_request("GET", kQuery, bearer())));
  const auto opening = fresh.read_until("\n\n", 10s);
  ASSERT_TRUE(opening);
  const auto comment = opening->find(": pkgcast revision ");
  ASSERT_NE(comment, std::string::npos) << *opening;
  const std::string start = opening->substr(comment + 19, opening->find('\n', comment) - (comment + 19));
  EXPECT_NE(opening->find("retry: 2000\nid: " + start + "\n: pkgcast revision " + start + "\n\n"), std::string::npos)
      << *opening;
  EXPECT_GE(std::stoull(start), ids[2]);

  RawSocket bad(port());
  ASSERT_TRUE(bad.send(events_request("GET", kQuery, bearer() + "Last-Event-ID: x\r\n", "", /*close=*/true)));
  EXPECT_EQ(status_of(bad.read_until_close(10s)), 400);

  // A misspelled resume parameter is refused, never ignored (ignored, the stream would start now and skip the
  // events the client asked for).
  for (const std::string misspelled : {"&Since=", "&lastEventId=", "&since_revision="}) {
    RawSocket refused(port());
    ASSERT_TRUE(refused.send(events_request("GET", kQuery, bearer(), misspelled + std::to_string(ids[0]), true)));
    const std::string got = refused.read_until_close(10s);
    EXPECT_EQ(status_of(got), 400) << misspelled;
    EXPECT_NE(got.find("unknown query parameter"), std::string::npos) << got;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, EventWireTest, ::testing::ValuesIn(backends()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace pkgcast::testing
