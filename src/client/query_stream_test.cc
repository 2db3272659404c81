#include "client/query_stream.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pkgcast::client {
namespace {

struct Decoded {
  std::vector<std::string> names;
  Status end;
};

Decoded decode(std::string_view body, std::size_t cut) {
  Decoded d;
  QueryAnswerDecoder dec([&](Instance&& inst) {
    d.names.push_back(inst["Name"].to_string());
    return true;
  });
  auto a = dec.feed(body.substr(0, cut));
  EXPECT_TRUE(a.ok() && *a);
  auto b = dec.feed(body.substr(cut));
  EXPECT_TRUE(b.ok() && *b);
  d.end = dec.finish();
  return d;
}

constexpr std::string_view kAnswer =
    R"({"instances":[{"__CLASS":"SMS_Package","Name":"a \"quoted\" ]} name","Tags":[{"x":[1]}]},)"
    R"( {"__CLASS":"SMS_Package","Name":"b"}]})";

TEST(QueryAnswerDecoderTest, InstancesArriveWhateverTheSplit) {
  for (std::size_t cut = 0; cut <= kAnswer.size(); ++cut) {
    Decoded d = decode(kAnswer, cut);
    EXPECT_EQ(d.names, (std::vector<std::string>{"a \"quoted\" ]} name", "b"})) << cut;
    EXPECT_TRUE(d.end.ok()) << cut << ": " << d.end.error().to_string();
  }
}

TEST(QueryAnswerDecoderTest, AnErrorAfterTheRowsIsTheAnswersError) {
  constexpr std::string_view body =
      R"({"instances":[{"Name":"a"}],"error":{"error":"WBEM_E_FAILED","hresult":"0x80041001","message":"disk"}})";
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    Decoded d = decode(body, cut);
    EXPECT_EQ(d.names, std::vector<std::string>{"a"});
    ASSERT_FALSE(d.end.ok());
    EXPECT_EQ(d.end.error(), make_error(WbemCode::kFailed, "disk"));
  }
}

TEST(QueryAnswerDecoderTest, EmptyAndMalformedAnswers) {
  EXPECT_TRUE(decode(R"({"instances":[]})", 5).end.ok());
  EXPECT_EQ(decode(R"({"instances":[{"Name":"a"})", 3).end.error().code, WbemCode::kInvalidObject);
  EXPECT_EQ(decode(R"({"rows":[]})", 3).end.error().code, WbemCode::kInvalidObject);
  QueryAnswerDecoder dec([](Instance&&) { return true; });
  auto r = dec.feed(R"({"instances":[1]})");
  EXPECT_FALSE(r.ok());
}

TEST(QueryAnswerDecoderTest, TheCallbackStopsEarly) {
  int n = 0;
  QueryAnswerDecoder dec([&](Instance&&) { return ++n < 1; });
  auto r = dec.feed(kAnswer);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace pkgcast::client
