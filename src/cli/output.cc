#include "cli/output.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace pkgcast::cli {
namespace {

std::size_t terminal_width() {
  if (const char* cols = std::getenv("COLUMNS")) {
    const long n = std::strtol(cols, nullptr, 10);
    if (n > 20 && n < 10000) return static_cast<std::size_t>(n);
  }
  return 120;
}

// Display width of UTF-8 text: one column per code point (good enough for names and paths).
std::size_t display_width(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void pad(std::string& s, std::size_t width) {
  const std::size_t w = display_width(s);
  if (w < width) s.append(width - w, ' ');
}

}  // namespace

std::string cell_text(const cim::Json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "TRUE" : "FALSE";
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v) {
      if (!out.empty()) out += ", ";
      out += cell_text(item);
    }
    return out;
  }
  if (v.is_object()) return v.contains("__CLASS") ? "<" + cell_text(v["__CLASS"]) + ">" : v.dump();
  return v.dump();
}

void print_record(const cim::Json& row) {
  std::size_t width = 0;
  for (auto it = row.begin(); it != row.end(); ++it) width = std::max(width, display_width(it.key()));
  for (auto it = row.begin(); it != row.end(); ++it) {
    std::string name = it.key();
    pad(name, width);
    std::cout << name << " : " << cell_text(it.value()) << '\n';
  }
}

void print_table(const std::vector<cim::Json>& rows, std::vector<std::string> columns) {
  if (rows.empty()) {
    std::cout << "(no instances)" << std::endl;
    return;
  }
  if (columns.empty()) {
    for (auto it = rows.front().begin(); it != rows.front().end(); ++it) {
      // __CLASS and __REVISION ride on every row; other system properties are there because the query named them.
      if (it.key() == "__CLASS" || it.key() == "__REVISION") continue;
      // A join's row holds one object per class: its properties become columns "Alias.Property".
      if (it.value().is_object() && it.value().contains("__CLASS")) {
        for (auto p = it.value().begin(); p != it.value().end(); ++p) {
          if (p.key().rfind("__", 0) != 0) columns.push_back(it.key() + "." + p.key());
        }
        continue;
      }
      columns.push_back(it.key());
    }
  }
  // A column "A.B" not in the row is property B of the row's object A.
  const auto cell = [](const cim::Json& row, const std::string& column) -> cim::Json {
    if (auto it = row.find(column); it != row.end()) return *it;
    const auto dot = column.find('.');
    if (dot == std::string::npos) return cim::Json();
    const auto object = row.find(column.substr(0, dot));
    if (object == row.end() || !object->is_object()) return cim::Json();
    const auto value = object->find(column.substr(dot + 1));
    return value == object->end() ? cim::Json() : *value;
  };
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> widths;
  for (const auto& c : columns) widths.push_back(display_width(c));
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      line.push_back(cell_text(cell(row, columns[i])));
      widths[i] = std::max(widths[i], display_width(line.back()));
    }
    cells.push_back(std::move(line));
  }
  std::size_t total = 0;
  for (std::size_t w : widths) total += w + 2;
  if (total > terminal_width() && columns.size() > 1) {
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (r) std::cout << '\n';
      cim::Json picked = cim::Json::object();
      for (std::size_t i = 0; i < columns.size(); ++i) picked[columns[i]] = cell(rows[r], columns[i]);
      print_record(picked);
    }
    std::cout.flush();
    return;
  }
  auto print_line = [&](std::vector<std::string> line) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (i + 1 < line.size()) pad(line[i], widths[i] + 2);
      out += line[i];
    }
    std::cout << out << '\n';
  };
  print_line(columns);
  std::vector<std::string> rule;
  for (std::size_t w : widths) rule.emplace_back(w, '-');
  print_line(rule);
  for (auto& line : cells) print_line(std::move(line));
  std::cout.flush();
}

}  // namespace pkgcast::cli
