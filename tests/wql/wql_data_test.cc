// Runs the WQL language tests in tests/wql/*.test (format in tests/wql/README.md).
//
// Each block is a case: a query, then what it must give (canonical form, error, bound classes, matching rows).
// Failures name the file and line of the block, so a failing case is found at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cim/cim.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

namespace fs = std::filesystem;

struct Case {
  std::string where;  // "file.test:12"
  std::string query;
  std::optional<std::string> canonical;
  std::optional<std::string> error;
  std::optional<std::string> classes;
  std::optional<std::string> rows;
  std::optional<std::string> json;
  std::string instances;  // instance file in force, relative to tests/wql
  std::string server;     // location in force (`location:`): rows are matched located there, as the provider
  std::string ns;         // locates them; empty: unlocated
};

fs::path data_dir() {
  const char* env = std::getenv("PKGCAST_SOURCE_DIR");
  return fs::path(env != nullptr ? env : PKGCAST_SOURCE_DIR_DEFAULT) / "tests" / "wql";
}

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// query-escaped: \xHH, \n, \r, \t, \\ stand for the byte (to write NUL, invalid UTF-8, newlines).
std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 >= s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    if (c == 'x' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (c == 'n') {
      out += '\n';
    } else if (c == 't') {
      out += '\t';
    } else if (c == 'r') {
      out += '\r';
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<Case> load_cases(const fs::path& file) {
  std::vector<Case> cases;
  std::ifstream in(file);
  std::string line;
  int line_no = 0;
  std::string instances;
  std::string server, ns;
  std::optional<Case> current;
  auto flush = [&] {
    if (current && !current->query.empty()) cases.push_back(*current);
    current.reset();
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) {
      flush();
      continue;
    }
    if (line[0] == '#') continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) {
      ADD_FAILURE() << file.filename().string() << ":" << line_no << ": no directive in '" << line << "'";
      continue;
    }
    const std::string key = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (key == "instances") {
      instances = trim(value);
      continue;
    }
    if (key == "location") {
      const std::string v = trim(value);
      const auto space = v.find(' ');
      server = v.substr(0, space);
      ns = space == std::string::npos ? std::string() : trim(v.substr(space + 1));
      continue;
    }
    if (!current) {
      current.emplace();
      current->where = file.filename().string() + ":" + std::to_string(line_no);
      current->instances = instances;
      current->server = server;
      current->ns = ns;
    }
    if (key == "query") {
      current->query = value;
    } else if (key == "query-escaped") {
      current->query = unescape(value);
    } else if (key == "canonical") {
      current->canonical = value;
    } else if (key == "error") {
      current->error = value;
    } else if (key == "classes") {
      current->classes = trim(value);
    } else if (key == "rows") {
      current->rows = trim(value);
    } else if (key == "json") {
      current->json = trim(value);
    } else {
      ADD_FAILURE() << current->where << ": unknown directive '" << key << "'";
    }
  }
  flush();
  return cases;
}

std::vector<fs::path> test_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(data_dir())) {
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Named instances of an instances file: {"name": {instance JSON}, ...}, in file order.
using Instances = std::vector<std::pair<std::string, cim::Instance>>;

const Instances& load_instances(const std::string& name) {
  static std::map<std::string, Instances> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  Instances out;
  std::ifstream in(data_dir() / name);
  const auto j = cim::Json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    ADD_FAILURE() << name << ": not a JSON object";
  } else {
    for (const auto& [key, value] : j.items()) {
      auto inst = cim::instance_from_json(value, cim::ClassRegistry::builtin());
      if (!inst.ok()) {
        ADD_FAILURE() << name << ": instance '" << key << "': " << inst.error().to_string();
        continue;
      }
      out.emplace_back(key, std::move(inst).value());
    }
  }
  return cache.emplace(name, std::move(out)).first->second;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

void run_case(const Case& c) {
  SCOPED_TRACE(c.where + ": " + c.query);
  const auto& registry = cim::ClassRegistry::builtin();
  auto parsed = parse(c.query);
  if (c.canonical) {
    ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
    EXPECT_EQ(print(*parsed), *c.canonical);
  }
  if (parsed.ok()) {
    // Every query that parses round-trips, whatever the case checks.
    const std::string printed = print(*parsed);
    auto reparsed = parse(printed);
    ASSERT_TRUE(reparsed.ok()) << printed << ": " << reparsed.error().to_string();
    EXPECT_TRUE(*reparsed == *parsed) << "parse(print(q)) != q for " << printed;
    EXPECT_EQ(print(*reparsed), printed);
  }
  if (c.json) {
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(to_json(*parsed).dump(), *c.json);
  }
  // GETDATE() is fixed, so that date arithmetic answers the same whenever the tests run.
  auto bound = compile(c.query, registry, BindOptions{.now = *cim::DateTime::parse("2026-03-15T12:00:00Z")});
  if (c.error) {
    ASSERT_FALSE(bound.ok()) << "expected " << *c.error;
    EXPECT_EQ(bound.error().to_string(), *c.error);
    return;
  }
  ASSERT_TRUE(bound.ok()) << bound.error().to_string();
  if (c.classes) {
    EXPECT_EQ(join(bound_classes(*bound)), *c.classes);
  }
  if (c.rows) {
    ASSERT_FALSE(c.instances.empty()) << "rows: without an instances: file";
    const Instances& instances = load_instances(c.instances);
    auto located = [&c](const cim::Instance& inst) {
      cim::Instance out = inst;
      out.set_location(c.server, c.ns);
      return out;
    };
    // IN (SELECT ...): each subquery answers over the same instances, as the provider answers it over the store.
    auto resolved = resolve_subqueries(*bound, [&](const BoundQuery& sub, const PropertyRef& selected)
                                                   -> Result<std::vector<cim::Value>> {
      std::vector<cim::Value> values;
      for (const auto& [name, inst] : instances) {
        if (matches(sub, located(inst))) values.push_back(inst.get(selected.index));
      }
      return values;
    });
    ASSERT_TRUE(resolved.ok());
    std::vector<std::string> got;
    if (resolved->is_join()) {
      // A joined row is named by its instances' names joined with '+', '-' for a LEFT JOIN's missing partner.
      std::vector<cim::Instance> all;
      for (const auto& [name, inst] : instances) all.push_back(located(inst));
      std::vector<std::vector<const cim::Instance*>> candidates;
      for (const auto& table : resolved->tables()) {
        candidates.emplace_back();
        for (const auto& inst : all) {
          if (inst.class_def().is_a(*table.cls)) candidates.back().push_back(&inst);
        }
      }
      join_rows(*resolved, candidates, [&](JoinedRow row) {
        std::string text;
        for (const cim::Instance* inst : row) {
          if (!text.empty()) text += '+';
          text += inst == nullptr ? std::string("-") : instances[static_cast<std::size_t>(inst - all.data())].first;
        }
        got.push_back(std::move(text));
        return true;
      });
    } else {
      for (const auto& [name, inst] : instances) {
        if (matches(*resolved, located(inst))) got.push_back(name);
      }
    }
    EXPECT_EQ(join(got), *c.rows == "(none)" ? "" : *c.rows);
  }
}

TEST(WqlDataTest, EveryCase) {
  std::size_t count = 0;
  for (const auto& file : test_files()) {
    for (const auto& c : load_cases(file)) {
      run_case(c);
      ++count;
    }
  }
  std::cout << "[ wql ] " << count << " cases\n";
  EXPECT_GE(count, 200u);
}

TEST(WqlDataTest, FuzzSeedsRoundTrip) {
  const fs::path corpus = data_dir().parent_path().parent_path() / "fuzz" / "corpus" / "wql";
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(corpus)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    SCOPED_TRACE(entry.path().filename().string());
    auto q = parse(text.str());
    if (!q.ok()) continue;
    auto again = parse(print(*q));
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_TRUE(*again == *q);
    ++count;
  }
  EXPECT_GE(count, 20u);
}

}  // namespace
}  // namespace pkgcast::wql
