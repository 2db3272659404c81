// Object paths: `\\SERVER\root\sms\site_ABC:SMS_Package.PackageID="ABC00001"`, or a relative path alone.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cim/class_def.h"
#include "cim/instance.h"
#include "core/result.h"

namespace pkgcast::cim {

struct KeyBinding {
  std::string name;
  Value value;  // string or integer or boolean
  friend bool operator==(const KeyBinding&, const KeyBinding&) = default;
};

struct ObjectPath {
  std::string server;          // empty for a relative path
  std::string namespace_path;  // empty for a relative path
  std::string class_name;
  std::vector<KeyBinding> keys;  // empty for a singleton (`Class=@`) or a class path
  bool singleton = false;

  // Parses absolute or relative paths. String key values take '"' with backslash escapes; integers are bare.
  // WBEM_E_INVALID_OBJECT_PATH with the position on malformed input.
  static Result<ObjectPath> parse(std::string_view text);
  // The path of an instance.
  static ObjectPath of(const Instance& inst);

  std::string relpath() const;
  std::string to_string() const;

  friend bool operator==(const ObjectPath&, const ObjectPath&) = default;
};

// Quotes a string key value the way object paths do: "a\"b\\c".
std::string quote_path_string(std::string_view s);

}  // namespace pkgcast::cim
