// Package sources: taking one (resolve under the roots, then ingest or measure on the source walker) and the
// content record each package version keeps in the meta area.
#include <nlohmann/json.hpp>

#include "site/internal.h"
#include "site/site.h"

namespace pkgcast::site {

using namespace internal;

namespace {

std::string meta_key(std::string_view content_id) { return "content/" + std::string(content_id); }

std::string encode(const SourceContent& c) {
  return nlohmann::json{{"manifest", c.manifest_hash},
                        {"size", c.size},
                        {"compressed_size", c.compressed_size},
                        {"source_date", c.source_date}}
      .dump();
}

Result<std::optional<SourceContent>> decode(std::string_view content_id, const std::optional<std::string>& text) {
  if (!text) return std::optional<SourceContent>();
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j["manifest"].is_string() || !j["size"].is_number_unsigned() ||
      !j["compressed_size"].is_number_unsigned() || !j["source_date"].is_number_integer()) {
    return make_error(WbemCode::kFailed, "the content record of " + std::string(content_id) + " is damaged");
  }
  SourceContent c;
  c.manifest_hash = j["manifest"].get<std::string>();
  c.size = j["size"].get<std::uint64_t>();
  c.compressed_size = j["compressed_size"].get<std::uint64_t>();
  c.source_date = j["source_date"].get<Micros>();
  return std::optional<SourceContent>(std::move(c));
}

}  // namespace

std::string content_id(std::string_view package_id, std::uint32_t version) {
  return std::string(package_id) + "." + std::to_string(version);
}

Status record_content(store::WriteTxn& txn, std::string_view package_id, std::uint32_t version,
                      const SourceContent& content) {
  return txn.put_meta(meta_key(content_id(package_id, version)), encode(content));
}

Result<std::optional<SourceContent>> recorded_content(store::WriteTxn& txn, std::string_view id) {
  PKG_ASSIGN_OR_RETURN(auto text, txn.get_meta(meta_key(id)));
  return decode(id, text);
}

Result<std::optional<SourceContent>> recorded_content(store::Store& store, std::string_view id) {
  PKG_ASSIGN_OR_RETURN(auto text, store.get_meta(meta_key(id)));
  return decode(id, text);
}

Result<TakenSource> Domain::take_source(std::string_view path) {
  PKG_TRY(check_text("PkgSourcePath", path, 1, kMaxPath));
  TakenSource taken;
  PKG_ASSIGN_OR_RETURN(taken.dir, sources_.resolve(std::string(path)));
  if (!ingest_) {
    PKG_ASSIGN_OR_RETURN(taken.size_kb, sources_.measure(taken.dir));
    return taken;
  }
  PKG_TRY(sources_.run(
      [&](std::chrono::steady_clock::time_point deadline) -> Status {
        PKG_ASSIGN_OR_RETURN(SourceContent content, ingest_(taken.dir, deadline));
        taken.content = std::move(content);
        return ok_status();
      },
      ingest_timeout_));
  taken.size_kb = kb_of(taken.content->size);
  return taken;
}

}  // namespace pkgcast::site
