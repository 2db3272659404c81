// The canonical printer. Its output is the normal form that tests compare and that parse() reads back to the same
// tree, so every choice here (spacing, case, quoting, parentheses) is part of the contract in wql.h.
#include "wql/literal.h"
#include <charconv>
#include <cmath>
#include <string>

#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

void print_real(double v, std::string& out) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  const std::string_view text(buf, static_cast<std::size_t>(res.ptr - buf));
  out += text;
  // Keep it a real when read back: "120" would lex as an integer.
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

// Intervals print as integers when they are whole (and small enough to be exact), else as reals.
void print_interval(double v, std::string& out) {
  if (v == std::floor(v) && v < 9007199254740992.0) {
    out += std::to_string(static_cast<std::uint64_t>(v));
  } else {
    print_real(v, out);
  }
}

void print_string(std::string_view s, std::string& out) {
  out += '\'';
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  out += '\'';
}

void print_literal(const ast::Literal& lit, std::string& out) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, ast::Null>) {
          out += "NULL";
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "TRUE" : "FALSE";
        } else if constexpr (std::is_same_v<T, double>) {
          print_real(v, out);
        } else if constexpr (std::is_same_v<T, std::string>) {
          print_string(v, out);
        } else {
          out += std::to_string(v);
        }
      },
      lit.value);
}

void print_operand(const ast::Operand& op, std::string& out) {
  if (const auto* path = std::get_if<ast::PropertyPath>(&op)) {
    out += path->dotted();
  } else if (const auto* lit = std::get_if<ast::Literal>(&op)) {
    print_literal(*lit, out);
  } else {
    // FUNCTION(datepart, a, b): the name upper-case, the datepart as written.
    const ast::Call& call = *std::get<ast::CallBox>(op);
    out += ast::function_name(call.function);
    out += '(';
    if (!call.datepart.empty()) {
      out += call.datepart;
      if (!call.args.empty()) out += ", ";
    }
    for (std::size_t i = 0; i < call.args.size(); ++i) {
      if (i > 0) out += ", ";
      print_operand(call.args[i], out);
    }
    out += ')';
  }
}

void print_paths(const std::vector<ast::PropertyPath>& paths, std::string& out) {
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (i > 0) out += ", ";
    out += paths[i].dotted();
  }
}

// `Class AS alias`: the alias always with AS, as the canonical form of both spellings.
void print_class(const std::string& name, const std::string& alias, std::string& out) {
  out += name;
  if (!alias.empty()) {
    out += " AS ";
    out += alias;
  }
}

void print_expr(const ast::Expr& e, std::string& out) {
  switch (e.kind) {
    case ast::ExprKind::kAnd:
    case ast::ExprKind::kOr:
      for (std::size_t i = 0; i < e.children.size(); ++i) {
        if (i > 0) out += e.kind == ast::ExprKind::kAnd ? " AND " : " OR ";
        const ast::Expr& child = e.children[i];
        // A nested AND/OR was parenthesised in the query (the parser flattens chains), so it is printed so.
        const bool parens = child.kind == ast::ExprKind::kAnd || child.kind == ast::ExprKind::kOr;
        if (parens) out += '(';
        print_expr(child, out);
        if (parens) out += ')';
      }
      break;
    case ast::ExprKind::kNot:
      out += "NOT (";
      print_expr(e.children.front(), out);
      out += ')';
      break;
    case ast::ExprKind::kCompare:
      print_operand(e.lhs, out);
      out += ' ';
      out += ast::compare_op_text(e.op);
      out += ' ';
      print_operand(e.rhs, out);
      break;
    case ast::ExprKind::kLike:
      print_operand(e.lhs, out);
      out += e.negated ? " NOT LIKE " : " LIKE ";
      print_operand(e.rhs, out);
      break;
    case ast::ExprKind::kIsNull:
      print_operand(e.lhs, out);
      out += e.negated ? " IS NOT NULL" : " IS NULL";
      break;
    case ast::ExprKind::kIsa:
      print_operand(e.lhs, out);
      out += " ISA ";
      print_operand(e.rhs, out);
      break;
    case ast::ExprKind::kIn:
      print_operand(e.lhs, out);
      out += e.negated ? " NOT IN (" : " IN (";
      if (!e.subquery.empty()) out += print(e.subquery.front());
      for (std::size_t i = 0; i < e.list.size(); ++i) {
        if (i > 0) out += ", ";
        print_literal(e.list[i], out);
      }
      out += ')';
      break;
  }
}

}  // namespace

std::string print(const ast::Expr& e) {
  std::string out;
  print_expr(e, out);
  return out;
}

std::string print(const ast::Query& q) {
  std::string out = "SELECT ";
  if (q.distinct) out += "DISTINCT ";
  if (q.count) {
    out += "COUNT(*)";
  } else if (q.select.empty()) {
    out += '*';
  } else {
    print_paths(q.select, out);
  }
  out += " FROM ";
  print_class(q.from_class, q.from_alias, out);
  for (const ast::Join& join : q.joins) {
    switch (join.kind) {
      case ast::JoinKind::kInner: out += " INNER JOIN "; break;
      case ast::JoinKind::kLeft: out += " LEFT JOIN "; break;
      case ast::JoinKind::kList: out += ", "; break;
    }
    print_class(join.cls.name, join.cls.alias, out);
    if (join.on) {
      out += " ON ";
      print_expr(*join.on, out);
    }
  }
  if (q.within) {
    out += " WITHIN ";
    print_interval(*q.within, out);
  }
  if (q.where) {
    out += " WHERE ";
    print_expr(*q.where, out);
  }
  for (std::size_t i = 0; i < q.order_by.size(); ++i) {
    out += i == 0 ? " ORDER BY " : ", ";
    out += q.order_by[i].path.dotted();
    if (q.order_by[i].descending) out += " DESC";
  }
  if (q.group) {
    out += " GROUP WITHIN ";
    print_interval(q.group->within, out);
    if (!q.group->by.empty()) {
      out += " BY ";
      print_paths(q.group->by, out);
    }
    if (q.group->having) {
      out += " HAVING ";
      print_expr(*q.group->having, out);
    }
  }
  return out;
}

std::string string_literal(std::string_view s) {
  std::string out;
  print_string(s, out);
  return out;
}

}  // namespace pkgcast::wql
