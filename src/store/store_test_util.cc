#include "store/store_test_util.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <future>
#include <latch>
#include <random>

#include "store/backends.h"

namespace pkgcast::store::testing {
namespace {

// postgresql://user@host:port/db?opts -> the same URL naming database `name`.
std::string with_database(const std::string& url, const std::string& name) {
  const auto scheme = url.find("://");
  const std::size_t authority = scheme == std::string::npos ? 0 : scheme + 3;
  const auto query = url.find('?', authority);
  const auto slash = url.find('/', authority);
  const std::string rest = query == std::string::npos ? "" : url.substr(query);
  const std::size_t end = slash != std::string::npos && (query == std::string::npos || slash < query)
                              ? slash
                              : (query == std::string::npos ? url.size() : query);
  return url.substr(0, end) + "/" + name + rest;
}

Status pg_admin(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    return make_error(WbemCode::kFailed, "cannot connect to " + url + ": " + msg);
  }
  PGresult* r = PQexec(c, sql.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  std::string msg = ok ? "" : PQerrorMessage(c);
  PQclear(r);
  PQfinish(c);
  if (!ok) return make_error(WbemCode::kFailed, sql + ": " + msg);
  return ok_status();
}

Result<std::unique_ptr<Connection>> raw_connection(const std::string& backend, const std::string& url) {
  if (backend == "sqlite") return open_sqlite_connection(url);
  return open_pg_connection(url);
}

}  // namespace

std::unique_ptr<TestDatabase> TestDatabase::create(const std::string& backend, std::string& skip_reason,
                                                   std::string& error) {
  auto db = std::make_unique<TestDatabase>();
  db->backend_ = backend;
  if (backend == "sqlite") {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pkgcast-store-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      error = "mkdtemp failed";
      return nullptr;
    }
    db->dir_ = tmpl;
    db->url_ = tmpl + "/site.db";
    return db;
  }
  const char* url = std::getenv("PKGCAST_TEST_PG_URL");
  if (url == nullptr || *url == '\0') {
    skip_reason = "PKGCAST_TEST_PG_URL is not set: PostgreSQL conformance cases skipped "
                  "(run under scripts/with-postgres to include them)";
    return nullptr;
  }
  std::random_device rd;
  char name[40];
  std::snprintf(name, sizeof name, "pkgcast_test_%08x%08x", rd(), rd());
  db->maintenance_ = url;
  db->database_ = name;
  // The locale of a database made with the defaults (and of scripts/with-postgres's server): lower() there folds
  // every letter unless told "C", which is what the store must not let through.
  Status st = pg_admin(url, std::string("CREATE DATABASE ") + name +
                                " TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'");
  if (!st.ok()) {
    error = st.error().to_string();
    return nullptr;
  }
  db->url_ = with_database(url, name);
  return db;
}

TestDatabase::~TestDatabase() {
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  if (!database_.empty()) (void)pg_admin(maintenance_, "DROP DATABASE IF EXISTS " + database_ + " WITH (FORCE)");
}

Status TestDatabase::raw_exec(const std::string& sql) const {
  PKG_ASSIGN_OR_RETURN(auto conn, raw_connection(backend_, url_));
  PKG_TRY(conn->exec(sql, {}));
  return ok_status();
}

Result<std::string> TestDatabase::raw_query_text(const std::string& sql) const {
  PKG_ASSIGN_OR_RETURN(auto conn, raw_connection(backend_, url_));
  std::string out;
  PKG_TRY(conn->query(sql, {}, [&](const SqlRow& row) -> Result<bool> {
    for (int c = 0; c < row.columns(); ++c) {
      out += row.is_null(c) ? "NULL" : std::string(row.as_text(c));
      out += c + 1 < row.columns() ? "|" : "\n";
    }
    return true;
  }));
  return out;
}

void StoreTest::SetUp() {
  std::string skip;
  std::string error;
  db_ = TestDatabase::create(GetParam(), skip, error);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(db_) << error;
  options_.clock = &clock_;
  reopen();
}

void StoreTest::TearDown() {
  store_.reset();
  db_.reset();
}

Result<std::unique_ptr<Store>> StoreTest::open_with(OpenOptions options) {
  options.url = db_->url();
  return Store::open(options);
}

void StoreTest::reopen() {
  store_.reset();
  auto s = open_with(options_);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  store_ = std::move(s).value();
  ASSERT_EQ(store_->backend_name(), GetParam());
}

const cim::ClassDef& StoreTest::cls(std::string_view name) const {
  const cim::ClassDef* c = options_.registry->find(name);
  EXPECT_NE(c, nullptr) << name;
  return *c;
}

std::size_t StoreTest::prop(std::string_view cls_name, std::string_view prop_name) const {
  auto i = cls(cls_name).find_property(prop_name);
  EXPECT_TRUE(i.has_value()) << cls_name << "." << prop_name;
  return i.value_or(0);
}

cim::Instance StoreTest::package(const std::string& id, const std::string& name) const {
  cim::Instance p(cls("SMS_Package"));
  EXPECT_TRUE(p.set("PackageID", cim::Value::string(id)).ok());
  EXPECT_TRUE(p.set("Name", cim::Value::string(name)).ok());
  return p;
}

Status StoreTest::put(const cim::Instance& inst) {
  auto r = store_->execute([&](WriteTxn& t) { return t.put(inst); });
  if (!r.ok()) return std::move(r).error();
  return ok_status();
}

Status StoreTest::insert(const cim::Instance& inst) {
  auto r = store_->execute([&](WriteTxn& t) { return t.insert(inst); });
  if (!r.ok()) return std::move(r).error();
  return ok_status();
}

Status StoreTest::remove(const cim::ClassDef& c, std::vector<cim::Value> key) {
  auto r = store_->execute([&](WriteTxn& t) { return t.remove(c, key); });
  if (!r.ok()) return std::move(r).error();
  return ok_status();
}

std::optional<cim::Instance> StoreTest::get(const cim::ClassDef& c, std::vector<cim::Value> key) {
  auto r = store_->get(c, key);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? std::move(r).value() : std::nullopt;
}

std::vector<cim::Instance> StoreTest::scan_all(const cim::ClassDef& c, const Predicate& p, ScanOptions o) {
  std::vector<cim::Instance> out;
  Status st = store_->scan(
      c, p,
      [&](cim::Instance&& i) {
        out.push_back(std::move(i));
        return true;
      },
      o);
  EXPECT_TRUE(st.ok()) << st.error().to_string();
  return out;
}

std::vector<JournalEntry> StoreTest::journal_after(std::uint64_t after, std::size_t limit) {
  std::vector<JournalEntry> out;
  Status st = store_->read_journal(after, limit, [&](JournalEntry&& e) {
    out.push_back(std::move(e));
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.error().to_string();
  return out;
}

std::uint64_t StoreTest::last_rev() {
  auto r = store_->last_revision();
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : 0;
}

std::vector<Result<CommitInfo>> StoreTest::run_in_one_batch(std::vector<WriteCommand> commands) {
  EXPECT_GE(options_.max_batch, commands.size() + 1);
  std::latch started(1);
  std::latch release(1);
  auto blocker = store_->submit([&](WriteTxn&) {
    started.count_down();
    release.wait();
    return ok_status();
  });
  started.wait();  // the writer runs the blocker: what is submitted now queues into the next batch
  std::vector<std::future<Result<CommitInfo>>> futures;
  for (auto& c : commands) futures.push_back(store_->submit(std::move(c)));
  release.count_down();
  EXPECT_TRUE(blocker.get().ok());
  std::vector<Result<CommitInfo>> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

std::vector<std::string> column(const std::vector<cim::Instance>& rows, std::size_t property) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.get(property).to_display());
  return out;
}

}  // namespace pkgcast::store::testing
