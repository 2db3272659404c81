#include "server/static_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "server/url.h"

namespace pkgcast::server {
namespace {
namespace fs = std::filesystem;

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pkgcast-static-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ / "web";
    fs::create_directories(root_ / "js");
    write(root_ / "index.html", "<html>dashboard</html>");
    write(root_ / "js" / "app.js", "console.log(1)");
    write(root_ / "style.CSS", "body{}");
    write(root_ / ".secret", "hidden");
    write(base_ / "outside.txt", "outside the root");
    fs::create_symlink(base_ / "outside.txt", root_ / "escape.txt");
  }
  void TearDown() override { fs::remove_all(base_); }

  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

  Response get(std::string_view raw_target) {
    auto target = decode_target(raw_target);
    EXPECT_TRUE(target.ok());
    Request r;
    r.method = "GET";
    r.path = target->path;
    return serve_static(root_, r);
  }

  fs::path base_;
  fs::path root_;
};

TEST_F(StaticFilesTest, ServesIndexForRootAndFilesWithTheirType) {
  Response index = get("/");
  EXPECT_EQ(index.status, 200u);
  EXPECT_EQ(index.body, "<html>dashboard</html>");
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  const auto header = [&](std::string_view name) -> std::string {
    for (const auto& [k, v] : index.headers) {
      if (k == name) return v;
    }
    return "";
  };
  EXPECT_EQ(header("Content-Security-Policy"),
            "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
  EXPECT_EQ(header("Referrer-Policy"), "no-referrer");
  EXPECT_EQ(header("X-Content-Type-Options"), "nosniff");

  Response js = get("/js/app.js");
  EXPECT_EQ(js.status, 200u);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(get("/style.CSS").content_type, "text/css; charset=utf-8");
  // A directory without index.html is not listed.
  EXPECT_EQ(get("/js/").status, 404u);
}

TEST_F(StaticFilesTest, RefusesTraversalInEverySpelling) {
  for (const char* target : {"/../outside.txt", "/js/../../outside.txt", "/%2e%2e/outside.txt",
                             "/%2E%2E%2Foutside.txt", "/js/%2e%2e/%2e%2e/outside.txt", "//etc/passwd",
                             "/js//app.js", "/./index.html", "/.secret", "/js\\..\\..\\outside.txt",
                             "/%5c..%5coutside.txt"}) {
    SCOPED_TRACE(target);
    Response r = get(target);
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_NE(r.body.find("WBEM_E_INVALID_PARAMETER"), std::string::npos);
  }
}

TEST_F(StaticFilesTest, RefusesSymlinkLeavingTheRoot) {
  Response r = get("/escape.txt");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body.find("outside the root"), std::string::npos);
}

TEST_F(StaticFilesTest, MissingFileIs404) {
  Response r = get("/nope.js");
  EXPECT_EQ(r.status, 404u);
  EXPECT_NE(r.body.find("WBEM_E_NOT_FOUND"), std::string::npos);
}

// A trailing slash names a directory: "/index.html/" is not the dashboard page (its relative links would resolve
// under it).
TEST_F(StaticFilesTest, TrailingSlashAfterAFileIs404) {
  for (const char* target : {"/index.html/", "/js/app.js/", "/style.CSS/"}) {
    SCOPED_TRACE(target);
    EXPECT_EQ(get(target).status, 404u);
  }
  EXPECT_EQ(get("/js/app.js").status, 200u);
}

TEST_F(StaticFilesTest, MissingIndexSaysTheDashboardIsNotInstalled) {
  fs::remove(root_ / "index.html");
  Response r = get("/");
  EXPECT_EQ(r.status, 404u);
  EXPECT_NE(r.body.find("dashboard is not installed"), std::string::npos) << r.body;
  Request req;
  req.path = "/";
  Response none = serve_static({}, req);
  EXPECT_EQ(none.status, 404u);
  EXPECT_NE(none.body.find("not installed"), std::string::npos);
}

TEST(ContentTypeTest, KnownAndUnknownExtensions) {
  EXPECT_EQ(content_type_for("a.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("a.JSON"), "application/json");
  EXPECT_EQ(content_type_for("a.bin"), "application/octet-stream");
  EXPECT_EQ(content_type_for("Makefile"), "application/octet-stream");
}

}  // namespace
}  // namespace pkgcast::server
