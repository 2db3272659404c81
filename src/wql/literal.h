// Building query text from names: a string as a WQL literal, quoted and escaped exactly as wql::print writes one
// (\\ \' \n \t \r), so a name with a quote in it stays one literal.
#pragma once

#include <string>
#include <string_view>

namespace pkgcast::wql {

std::string string_literal(std::string_view s);

}  // namespace pkgcast::wql
