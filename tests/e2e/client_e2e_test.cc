// The C++ client library (include/pkgcast/) against a real server process, on both backends: data queries and
// how the server's errors reach a program.
#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "pkgcast/pkgcast.h"
#include "server_fixture.h"

namespace pkgcast::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kNamespace = R"(root\sms\site_ABC)";

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

class ClientE2eTest : public ServerTest {
 protected:
  ManagementScope scope(std::string ns = kNamespace) const {
    return ManagementScope(url_, std::move(ns), {.token = admin_token()});
  }
  std::string create_package(const std::string& name) {
    auto r = cli({"package", "create", "--name", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return first_line(r.out);
  }
};

TEST_P(ClientE2eTest, ExecQueryAnswersInstancesAsTheSdkSampleReadsThem) {
  const std::string a = create_package("Office");
  const std::string b = create_package("Visio");
  create_package("Project");

  auto rows = scope().exec_query("SELECT * FROM SMS_Package WHERE Name <> 'Project'");
  ASSERT_EQ(rows.size(), 2u);
  std::sort(rows.begin(), rows.end(),
            [](const Instance& x, const Instance& y) { return x["Name"].as_string() < y["Name"].as_string(); });
  EXPECT_EQ(rows[0].class_name(), "SMS_Package");
  EXPECT_EQ(rows[0]["PackageID"].as_string(), a);
  EXPECT_EQ(rows[1]["name"].as_string(), "Visio");

  // A package without source files has its Root summarizer row at once, with Targeted = 0.
  auto root = scope().exec_query("SELECT * FROM SMS_PackageStatusRootSummarizer WHERE PackageID = '" + b + "'");
  ASSERT_EQ(root.size(), 1u);
  EXPECT_EQ(root[0]["Name"].as_string(), "Visio");
  EXPECT_EQ(root[0]["Targeted"].as_uint32(), 0u);
  EXPECT_EQ(root[0]["Installed"].as_uint32(), 0u);
}

// A join answers __Generic instances whose embedded objects hold what a one-class query with the same selection
// holds: the selected properties and the keys, nothing else (not the class's other properties as NULL).
TEST_P(ClientE2eTest, JoinedObjectsHoldTheSelectedPropertiesAndKeys) {
  const std::string id = create_package("Office");
  auto program = cli({"program", "create", id, "--name", "Install", "--command-line", "setup"});
  ASSERT_EQ(program.exit_code, 0) << program.err;
  auto names = [](const Instance& inst) {
    std::vector<std::string> out;
    for (const auto& [name, value] : inst.properties()) out.push_back(name);
    return out;
  };
  auto rows = scope().exec_query("SELECT SMS_Package.Name, SMS_Program.CommandLine FROM SMS_Package JOIN SMS_Program "
                                 "ON SMS_Package.PackageID = SMS_Program.PackageID");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].class_name(), "__Generic");
  const Instance& pkg = rows[0]["SMS_Package"].as_object();
  EXPECT_EQ(pkg.class_name(), "SMS_Package");
  EXPECT_EQ(pkg["Name"].as_string(), "Office");
  EXPECT_FALSE(pkg.contains("Version"));
  auto one = scope().exec_query("SELECT Name FROM SMS_Package");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(names(pkg), names(one[0]));
  const Instance& prog = rows[0]["SMS_Program"].as_object();
  EXPECT_EQ(prog["CommandLine"].as_string(), "setup");
  EXPECT_EQ(names(prog), names(scope().exec_query("SELECT CommandLine FROM SMS_Program").at(0)));
}

TEST_P(ClientE2eTest, TheStreamingFormStopsEarlyAndTheScopeGoesOn) {
  for (int i = 0; i < 5; ++i) create_package("P" + std::to_string(i));
  const ManagementScope s = scope();
  int seen = 0;
  s.exec_query("SELECT * FROM SMS_Package", [&](Instance&& inst) {
    EXPECT_EQ(inst.class_name(), "SMS_Package");
    return ++seen < 2;
  });
  EXPECT_EQ(seen, 2);
  // The same scope (and its pooled connection) answers the next query in full.
  auto all = s.try_exec_query("SELECT PackageID FROM SMS_Package");
  ASSERT_TRUE(all.ok()) << all.error().to_string();
  EXPECT_EQ(all->size(), 5u);
}

TEST_P(ClientE2eTest, QueriesFromManyThreadsShareOneScope) {
  create_package("Office");
  const ManagementScope s = scope();
  std::vector<std::thread> threads;
  std::atomic<int> answers{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = s.try_exec_query("SELECT * FROM SMS_Package");
        if (r.ok() && r->size() == 1) ++answers;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(answers.load(), 40);
}

TEST_P(ClientE2eTest, ServerErrorsBecomeManagementErrorsWithTheirCodes) {
  auto code_of = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const ManagementError& e) {
      EXPECT_FALSE(e.message().empty());
      return e.code();
    }
    return WbemCode::kOk;
  };
  const ManagementScope s = scope();
  EXPECT_EQ(code_of([&] { s.exec_query("SELECT * SMS_Package"); }), WbemCode::kInvalidQuery);
  EXPECT_EQ(code_of([&] { s.exec_query("SELECT * FROM SMS_Packag"); }), WbemCode::kInvalidClass);
  EXPECT_EQ(code_of([&] { s.exec_query("SELECT * FROM SMS_Package WHERE Nme = 'x'"); }),
            WbemCode::kInvalidProperty);
  EXPECT_EQ(code_of([&] {
              s.exec_query("SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'");
            }),
            WbemCode::kInvalidQueryType);
  EXPECT_EQ(code_of([&] { scope(R"(root\sms\site_XYZ)").exec_query("SELECT * FROM SMS_Package"); }),
            WbemCode::kInvalidNamespace);
  EXPECT_EQ(code_of([&] {
              ManagementScope(url_, kNamespace, {.token = "pkc_not_a_token"}).exec_query("SELECT * FROM SMS_Package");
            }),
            WbemCode::kAccessDenied);

  auto refused = s.try_exec_query("SELECT * FROM SMS_Package WHERE");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, WbemCode::kInvalidQuery);
  EXPECT_NE(refused.error().message.find("1:"), std::string::npos) << "the position: " << refused.error().message;

  const int port_gone = 1;
  auto unreachable = ManagementScope("http://127.0.0.1:" + std::to_string(port_gone), kNamespace,
                                     {.token = admin_token(), .timeout = 5s})
                         .try_exec_query("SELECT * FROM SMS_Package");
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.error().code, WbemCode::kTransportFailure);
}

TEST_P(ClientE2eTest, TheTokenFileIsReadLikeTheCommandLineReadsIt) {
  create_package("Office");
  ManagementScope s(url_, kNamespace, {.token_file = data_dir_ + "/admin.token"});
  EXPECT_EQ(s.exec_query("SELECT * FROM SMS_Package").size(), 1u);
  auto missing = ManagementScope::try_create(url_, kNamespace, {.token_file = data_dir_ + "/nope"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, WbemCode::kInvalidParameter);
}

INSTANTIATE_TEST_SUITE_P(Backends, ClientE2eTest, ::testing::ValuesIn(backends()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace pkgcast::testing
