#include "cim/object_path.h"

#include <charconv>

namespace pkgcast::cim {
namespace {

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

class PathParser {
 public:
  explicit PathParser(std::string_view text) : text_(text) {}

  Result<ObjectPath> parse() {
    ObjectPath out;
    if (text_.empty()) return fail("empty object path");
    if (text_.size() >= 2 && (text_.substr(0, 2) == "\\\\" || text_.substr(0, 2) == "//")) {
      pos_ = 2;
      const std::size_t end = text_.find_first_of("\\/", pos_);
      if (end == std::string_view::npos || end == pos_) return fail("expected a server name after '\\\\'");
      out.server = std::string(text_.substr(pos_, end - pos_));
      pos_ = end + 1;
      PKG_ASSIGN_OR_RETURN(out.namespace_path, read_namespace(/*required=*/true));
    } else {
      PKG_ASSIGN_OR_RETURN(out.namespace_path, read_namespace(/*required=*/false));
    }
    const std::size_t start = pos_;
    while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
    if (pos_ == start) return fail("expected a class name");
    out.class_name = std::string(text_.substr(start, pos_ - start));
    if (at_end()) return out;
    if (text_[pos_] == '=') {
      ++pos_;
      if (!at_end() && text_[pos_] == '@') {
        ++pos_;
        out.singleton = true;
      } else {
        PKG_ASSIGN_OR_RETURN(Value v, read_value());
        out.keys.push_back({"", std::move(v)});
      }
    } else if (text_[pos_] == '.') {
      ++pos_;
      while (true) {
        const std::size_t name_start = pos_;
        while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
        if (pos_ == name_start) return fail("expected a key property name");
        std::string name(text_.substr(name_start, pos_ - name_start));
        if (at_end() || text_[pos_] != '=') return fail("expected '=' after key '" + name + "'");
        ++pos_;
        PKG_ASSIGN_OR_RETURN(Value v, read_value());
        out.keys.push_back({std::move(name), std::move(v)});
        if (at_end()) break;
        if (text_[pos_] != ',') return fail("expected ',' between key bindings");
        ++pos_;
      }
    } else {
      return fail("expected '.', '=' or the end after the class name");
    }
    if (!at_end()) return fail("unexpected characters after the object path");
    return out;
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }

  Error fail(const std::string& why) const {
    return make_error(WbemCode::kInvalidObjectPath, why + " at offset " + std::to_string(pos_));
  }

  // A namespace ends at the first ':' that comes before any quote or '.'. Relative paths have none.
  Result<std::string> read_namespace(bool required) {
    std::size_t i = pos_;
    while (i < text_.size() && text_[i] != ':' && text_[i] != '"' && text_[i] != '.' && text_[i] != '=') ++i;
    if (i < text_.size() && text_[i] == ':') {
      std::string ns(text_.substr(pos_, i - pos_));
      if (ns.empty()) return fail("empty namespace");
      pos_ = i + 1;
      return ns;
    }
    if (required) return fail("expected ':' after the namespace");
    return std::string();
  }

  Result<Value> read_value() {
    if (at_end()) return fail("expected a key value");
    if (text_[pos_] == '"' || text_[pos_] == '\'') {
      const char quote = text_[pos_++];
      std::string s;
      while (true) {
        if (at_end()) return fail("unterminated string");
        const char c = text_[pos_++];
        if (c == quote) break;
        if (c == '\\') {
          if (at_end()) return fail("unterminated escape");
          s += text_[pos_++];
        } else {
          s += c;
        }
      }
      return Value::string(std::move(s));
    }
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ',') ++pos_;
    const std::string_view token = text_.substr(start, pos_ - start);
    if (iequals(token, "TRUE")) return Value::boolean(true);
    if (iequals(token, "FALSE")) return Value::boolean(false);
    if (!token.empty() && token[0] == '-') {
      std::int64_t x;
      auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), x);
      if (ec == std::errc() && p == token.data() + token.size()) {
        // "-0" is zero: integers keep one canonical form (unsigned unless negative) so paths compare equal.
        return x < 0 ? Value::sint(CimType::kSint64, x) : Value::uint(CimType::kUint64, 0);
      }
    } else {
      std::uint64_t x;
      auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), x);
      if (ec == std::errc() && p == token.data() + token.size() && !token.empty()) {
        return Value::uint(CimType::kUint64, x);
      }
    }
    pos_ = start;
    return fail("expected a quoted string, an integer or TRUE/FALSE as key value");
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

void append_quoted(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

void append_key_value_text(std::string& out, const Value& v) {
  if (v.is_null()) {
    out += "NULL";
  } else if (v.type().base == CimType::kString || v.type().base == CimType::kReference) {
    append_quoted(out, v.as_string());
  } else if (v.type().base == CimType::kDateTime) {
    append_quoted(out, v.as_datetime().to_dmtf());
  } else {
    out += v.to_display();
  }
}

}  // namespace

std::string quote_path_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_quoted(out, s);
  return out;
}

// ObjectPath::of(*this).relpath(), without the ObjectPath: every journal entry is named by it.
std::string Instance::relpath() const {
  const ClassDef& cls = class_def();
  std::string out = class_name();
  if (cls.key_indices().empty()) return out + "=@";
  char separator = '.';
  for (std::size_t index : cls.key_indices()) {
    out += separator;
    separator = ',';
    out += cls.property(index).name;
    out += '=';
    append_key_value_text(out, get(index));
  }
  return out;
}

Result<ObjectPath> ObjectPath::parse(std::string_view text) { return PathParser(text).parse(); }

ObjectPath ObjectPath::of(const Instance& inst) {
  ObjectPath p;
  p.server = inst.server();
  p.namespace_path = inst.namespace_path();
  p.class_name = inst.class_name();
  const ClassDef& cls = inst.class_def();
  for (std::size_t index : cls.key_indices()) p.keys.push_back({cls.property(index).name, inst.get(index)});
  p.singleton = p.keys.empty();
  return p;
}

std::string ObjectPath::relpath() const {
  std::string out = class_name;
  if (singleton) return out + "=@";
  if (keys.size() == 1 && keys[0].name.empty()) {
    out += '=';
    append_key_value_text(out, keys[0].value);
    return out;
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    out += i == 0 ? '.' : ',';
    out += keys[i].name;
    out += '=';
    append_key_value_text(out, keys[i].value);
  }
  return out;
}

std::string ObjectPath::to_string() const {
  if (namespace_path.empty()) return relpath();
  std::string out;
  if (!server.empty()) out = "\\\\" + server + "\\";
  return out + namespace_path + ":" + relpath();
}

}  // namespace pkgcast::cim
