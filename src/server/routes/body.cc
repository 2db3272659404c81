// Strict request bodies, and the helpers every resource shares.
#include <algorithm>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/strings.h"
#include "provider/json_writer.h"
#include "server/routes/internal.h"

namespace pkgcast::server::routes {
namespace {

// Checks a document's shape before anything is built from it: where a malformed one breaks (nlohmann's
// non-throwing parse says only that it failed, its SAX interface says where), and whether it nests deeper than any
// body of this API does. Without the bound a 1 MiB body of nested arrays cost 1-2 s and 100 MB to build.
constexpr std::size_t kMaxBodyDepth = 64;
struct Shape : nlohmann::json_sax<nlohmann::json> {
  std::size_t position = 0;
  std::size_t depth = 0;
  bool too_deep = false;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return enter(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return leave(); }
  bool start_array(std::size_t) override { return enter(); }
  bool end_array() override { return leave(); }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception&) override {
    position = pos;
    return false;
  }
  bool enter() {
    too_deep = ++depth > kMaxBodyDepth;
    return !too_deep;
  }
  bool leave() {
    --depth;
    return true;
  }
};

// Finds the first member name that appears twice in one object. nlohmann keeps the last of duplicates silently,
// and another reader may keep the first: a body must mean one thing to everyone, so duplicates are refused.
struct DuplicateKeys : nlohmann::json_sax<nlohmann::json> {
  // The names seen so far in each enclosing object: hashed, so a body of 100,000 distinct names costs 100,000
  // lookups, not the 5 billion comparisons a list would (a 1 MiB body took 38 s of a handler thread).
  std::vector<std::unordered_set<std::string>> open;
  std::optional<std::string> duplicate;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    open.emplace_back();
    return true;
  }
  bool key(string_t& name) override {
    if (!open.back().insert(name).second) {
      duplicate = name;
      return false;  // stop at the first
    }
    return true;
  }
  bool end_object() override {
    open.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
};

// A member name as shown in an error: at most 64 bytes, control characters replaced.
std::string shown_name(std::string_view name) {
  std::string shown(name.substr(0, 64));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return shown;
}

Error bad(std::string_view name, std::string_view expected) {
  return make_error(WbemCode::kInvalidParameter, "field '" + std::string(name) + "' must be " + std::string(expected));
}

}  // namespace

Result<Body> Body::parse(std::string_view text, bool empty_ok) {
  Body body;
  const bool blank =
      std::all_of(text.begin(), text.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
  if (blank && empty_ok) {
    body.json_ = nlohmann::json::object();
    return body;
  }
  Shape shape;
  if (!nlohmann::json::sax_parse(text.begin(), text.end(), &shape, nlohmann::json::input_format_t::json, true)) {
    if (shape.too_deep) {
      return make_error(WbemCode::kInvalidParameter,
                        "JSON nested deeper than " + std::to_string(kMaxBodyDepth) + " levels");
    }
    return make_error(WbemCode::kInvalidParameter, "malformed JSON at byte " + std::to_string(shape.position));
  }
  body.json_ = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (body.json_.is_discarded()) return make_error(WbemCode::kInvalidParameter, "malformed JSON");
  if (!body.json_.is_object()) return make_error(WbemCode::kInvalidParameter, "the body must be a JSON object");
  DuplicateKeys keys;
  nlohmann::json::sax_parse(text.begin(), text.end(), &keys, nlohmann::json::input_format_t::json, true);
  if (keys.duplicate) {
    return make_error(WbemCode::kInvalidParameter, "field '" + shown_name(*keys.duplicate) + "' appears twice");
  }
  return body;
}

const nlohmann::json* Body::take(std::string_view name) {
  auto it = json_.find(name);
  if (it == json_.end()) return nullptr;
  taken_.emplace_back(name);
  return it->is_null() ? nullptr : &*it;  // null reads as absent
}

Result<std::optional<std::string>> Body::string(std::string_view name) {
  const nlohmann::json* j = take(name);
  if (j == nullptr) return std::optional<std::string>();
  if (!j->is_string()) return bad(name, "a string");
  return std::optional<std::string>(j->get<std::string>());
}

Result<std::string> Body::required_string(std::string_view name) {
  PKG_ASSIGN_OR_RETURN(auto s, string(name));
  if (!s) return make_error(WbemCode::kInvalidParameter, "field '" + std::string(name) + "' is required");
  return std::move(*s);
}

Result<std::optional<bool>> Body::boolean(std::string_view name) {
  const nlohmann::json* j = take(name);
  if (j == nullptr) return std::optional<bool>();
  if (!j->is_boolean()) return bad(name, "true or false");
  return std::optional<bool>(j->get<bool>());
}

Result<std::optional<std::uint32_t>> Body::uint32(std::string_view name) {
  const nlohmann::json* j = take(name);
  if (j == nullptr) return std::optional<std::uint32_t>();
  if (!j->is_number_unsigned() || j->get<std::uint64_t>() > 0xFFFFFFFFu) {
    return bad(name, "an integer 0..4294967295");
  }
  return std::optional<std::uint32_t>(static_cast<std::uint32_t>(j->get<std::uint64_t>()));
}

Result<std::optional<std::vector<std::string>>> Body::strings(std::string_view name) {
  const nlohmann::json* j = take(name);
  if (j == nullptr) return std::optional<std::vector<std::string>>();
  if (!j->is_array()) return bad(name, "an array of strings");
  std::vector<std::string> out;
  for (const auto& item : *j) {
    if (!item.is_string()) return bad(name, "an array of strings");
    out.push_back(item.get<std::string>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::optional<nlohmann::json>> Body::raw(std::string_view name) {
  const nlohmann::json* j = take(name);
  if (j == nullptr) return std::optional<nlohmann::json>();
  return std::optional<nlohmann::json>(*j);
}

Status Body::finish() const {
  for (auto it = json_.begin(); it != json_.end(); ++it) {
    if (std::find(taken_.begin(), taken_.end(), it.key()) == taken_.end()) {
      return make_error(WbemCode::kInvalidParameter, "unknown field '" + shown_name(it.key()) + "'");
    }
  }
  return ok_status();
}

const site::TokenRecord& caller_of(const Request& req) {
  // Every route here demands a role, so the server authenticated the caller; an absent caller would be a server
  // bug, and is treated as the most limited caller rather than trusted.
  static const site::TokenRecord kNobody = [] {
    site::TokenRecord r;
    r.role = site::Role::kDp;
    r.sites = {"\x01"};
    return r;
  }();
  return req.caller ? *req.caller : kNobody;
}

Status require_site(const Request& req, std::string_view site_code) {
  if (caller_of(req).can_see_site(site_code)) return ok_status();
  return make_error(WbemCode::kAccessDenied,
                    "this token is limited to other sites than " + to_upper(site_code.substr(0, 16)));
}

bool visible(const Request& req, const cim::Instance& inst) { return visible(caller_of(req), inst); }

bool visible(const site::TokenRecord& caller, const cim::Instance& inst) {
  if (caller.sites.empty()) return true;
  const cim::Value* where = inst.find("SiteCode");
  if (where == nullptr) where = inst.find("SourceSite");
  if (where == nullptr) return true;  // classes that span sites (DP groups)
  return !where->is_null() && !where->is_array() && caller.can_see_site(where->as_string());
}

Status require_visible(const Request& req, const cim::Value* site, std::string absent_message) {
  const std::string code = site != nullptr && !site->is_null() && !site->is_array() ? site->as_string() : "";
  if (caller_of(req).can_see_site(code)) return ok_status();
  return make_error(WbemCode::kNotFound, std::move(absent_message));
}

Result<cim::Instance> visible_package(ApiContext& ctx, const Request& req, std::string_view package_id) {
  PKG_ASSIGN_OR_RETURN(cim::Instance pkg, ctx.domain.get_package(package_id));
  const cim::Value* id = pkg.find("PackageID");
  const std::string shown = id != nullptr && !id->is_null() ? id->as_string() : std::string(package_id.substr(0, 64));
  // Worded as the domain words an absent package, so the answer does not tell the two apart.
  PKG_TRY(require_visible(req, pkg.find("SourceSite"), "package '" + shown + "' does not exist"));
  return pkg;
}

Response json_body(unsigned status, const nlohmann::ordered_json& j) {
  return Response::json(status, j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

Response instance_body(unsigned status, const cim::Instance& inst) {
  std::string out;
  provider::append_instance_json(out, inst);
  return Response::json(status, std::move(out));
}

Response instance_list(const Request& req, const std::vector<cim::Instance>& instances) {
  std::string out = "[";
  bool first = true;
  for (const auto& inst : instances) {
    if (!visible(req, inst)) continue;
    if (!first) out += ',';
    first = false;
    provider::append_instance_json(out, inst);
  }
  out += ']';
  return Response::json(200, std::move(out));
}

namespace {

// A list's pull source (streamed_list): each next() reads at most kPageRows rows, resuming strictly after the last
// key read, and stops early once the room the server offers is used.
class ListSource final : public StreamSource {
 public:
  static constexpr std::uint64_t kPageRows = 256;

  ListSource(store::Store& store, site::TokenRecord caller, const cim::ClassDef& cls, store::Predicate filter,
             RowWriter write)
      : store_(store), caller_(std::move(caller)), cls_(cls), filter_(std::move(filter)), write_(std::move(write)) {}

  Step next(std::string& out, std::size_t room) override {
    if (!opened_) {
      out += '[';
      opened_ = true;
    }
    if (!read_all_) {
      store::ScanOptions page;
      page.limit = kPageRows;
      page.after = after_;
      std::uint64_t rows = 0;
      bool full = false;
      Status written = ok_status();
      const Status st = store_.scan(
          cls_, filter_,
          [&](cim::Instance&& inst) {
            ++rows;
            std::vector<cim::Value> key;
            for (const std::size_t k : cls_.key_indices()) key.push_back(inst.get(k));
            after_ = std::move(key);
            if (visible(caller_, inst)) {
              if (!first_) out += ',';
              first_ = false;
              if (write_) {
                written = write_(std::move(inst), out);
                if (!written.ok()) return false;
              } else {
                provider::append_instance_json(out, inst);
              }
            }
            full = out.size() >= room;
            return !full;
          },
          page);
      if (!st.ok()) return Step::done(st);
      if (!written.ok()) return Step::done(written);
      read_all_ = !full && rows < kPageRows;
      if (!read_all_) return Step::more();
    }
    out += ']';
    return Step::done();
  }

 private:
  store::Store& store_;
  const site::TokenRecord caller_;
  const cim::ClassDef& cls_;
  const store::Predicate filter_;
  const RowWriter write_;
  std::optional<std::vector<cim::Value>> after_;
  bool opened_ = false;
  bool first_ = true;
  bool read_all_ = false;
};

}  // namespace

Response streamed_list(store::Store& store, const Request& req, const cim::ClassDef& cls, store::Predicate filter,
                       RowWriter write) {
  Response resp;
  resp.status = 200;
  resp.stream = std::make_shared<ListSource>(store, caller_of(req), cls, std::move(filter), std::move(write));
  return resp;
}

Status only_query_parameters(const Request& req, std::initializer_list<std::string_view> known) {
  for (const auto& [name, value] : req.query) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return make_error(WbemCode::kInvalidParameter, "unknown query parameter '" + name.substr(0, 64) + "'");
    }
  }
  return ok_status();
}

Response error_body(const Error& e) { return error_response(e); }

Handler handler(std::function<Result<Response>(Request&)> body) {
  return [body = std::move(body)](Request& req) -> Response {
    Result<Response> r = body(req);
    if (!r.ok()) return error_response(r.error());
    return std::move(r).value();
  };
}

std::string path(std::string_view suffix) { return std::string(kPrefix) + std::string(suffix); }

}  // namespace pkgcast::server::routes
