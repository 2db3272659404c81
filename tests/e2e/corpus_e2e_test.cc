// `pkgcast query` against a running server answers every valid data query of the WQL test corpus
// (tests/wql/*.test), on both backends.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cim/class_def.h"
#include "server_fixture.h"
#include "wql/wql.h"

namespace pkgcast::testing {
namespace {

// The valid data queries of the corpus: blocks with a `query:` line and no `error:` line.
std::vector<std::string> corpus_data_queries() {
  const char* env = std::getenv("PKGCAST_SOURCE_DIR");
  const std::filesystem::path dir = std::filesystem::path(env != nullptr ? env : PKGCAST_SOURCE_DIR_DEFAULT) / "tests/wql";
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".test") continue;
    std::ifstream in(entry.path());
    std::string line, query;
    bool failing = false;
    auto flush = [&] {
      if (!query.empty() && !failing) {
        auto bound = wql::compile(query, cim::ClassRegistry::builtin());
        if (bound.ok() && !bound->is_event()) out.push_back(query);
      }
      query.clear();
      failing = false;
    };
    while (std::getline(in, line)) {
      if (line.empty()) {
        flush();
      } else if (line.rfind("query: ", 0) == 0) {
        query = line.substr(7);
      } else if (line.rfind("error:", 0) == 0) {
        failing = true;
      }
    }
    flush();
  }
  return out;
}

class CorpusE2eTest : public ServerTest {};

TEST_P(CorpusE2eTest, EveryValidDataQueryOfTheCorpusIsAnswered) {
  ASSERT_EQ(cli({"site", "create", "XYZ", "--name", "Branch", "--parent", "ABC", "--type", "secondary"}).exit_code, 0);
  ASSERT_EQ(cli({"dp", "add", "dp1.example", "--site", "ABC"}).exit_code, 0);
  ASSERT_EQ(cli({"package", "create", "--name", "Office", "--manufacturer", "Contoso"}).exit_code, 0);
  ASSERT_EQ(cli({"program", "create", "ABC00001", "--name", "Install", "--command-line", "setup"}).exit_code, 0);
  ASSERT_EQ(cli({"advertisement", "create", "ABC00001", "--program", "Install", "--collection", "SMS00001"}).exit_code, 0);

  const auto queries = corpus_data_queries();
  ASSERT_GT(queries.size(), 100u) << "the corpus should hold well over a hundred valid data queries";
  for (const auto& q : queries) {
    auto r = cli({"--json", "query", q});
    ASSERT_EQ(r.exit_code, 0) << q << "\n" << r.err;
    auto rows = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_TRUE(rows.is_array()) << q << "\n" << r.out;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, CorpusE2eTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pkgcast::testing
