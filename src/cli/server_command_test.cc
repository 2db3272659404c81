// `pkgcast server`'s flags: given ones reach ServerFlags, absent ones stay unset so the environment and the
// config file can supply them.
#include "cli/server_command.h"

#include <gtest/gtest.h>

namespace pkgcast::cli {
namespace {

TEST(ServerCommandTest, GivenFlagsAreSetAndOthersStayUnset) {
  CLI::App app;
  CLI::App* cmd = app.add_subcommand("server");
  server::ServerFlags flags;
  add_server_flags(*cmd, flags);
  app.parse("server --workers 8 --site-code ABC --listen 127.0.0.1:0 --data-dir /tmp/x --type central", false);
  EXPECT_EQ(flags.listen, "127.0.0.1:0");
  EXPECT_EQ(flags.site_code, "ABC");
  EXPECT_EQ(flags.data_dir, "/tmp/x");
  EXPECT_EQ(flags.site_type, "central");
  EXPECT_EQ(flags.workers, 8);
  EXPECT_FALSE(flags.db);
  EXPECT_FALSE(flags.config_file);
  EXPECT_FALSE(flags.tls_cert);
  EXPECT_FALSE(flags.log_level);
}

TEST(ServerCommandTest, SubcommandSetsTheActionOnlyWhenGiven) {
  CliContext ctx;
  CLI::App app;
  add_server_command(app, ctx);
  app.add_subcommand("other");
  app.parse("other", false);
  EXPECT_FALSE(ctx.action);

  CliContext ctx2;
  CLI::App app2;
  add_server_command(app2, ctx2);
  app2.parse("server --listen bad", false);
  ASSERT_TRUE(ctx2.action);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(ctx2.action(), 2);  // bad configuration: exit 2 before anything starts
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("--listen"), std::string::npos);
}

TEST(ServerCommandTest, WorkersMustBeANumber) {
  CLI::App app;
  CLI::App* cmd = app.add_subcommand("server");
  server::ServerFlags flags;
  add_server_flags(*cmd, flags);
  EXPECT_THROW(app.parse("server --workers four", false), CLI::ParseError);
}

}  // namespace
}  // namespace pkgcast::cli
