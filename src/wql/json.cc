// The AST as JSON (docs/wql.md, "JSON form"). Meant for tools, so it is explicit rather than compact: every
// condition node is an object with an "op", and operands say whether they are a property or a literal.
#include <string>

#include "wql/lexer.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

cim::Json literal_json(const ast::Literal& lit) {
  return std::visit(
      [](const auto& v) -> cim::Json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, ast::Null>) {
          return nullptr;
        } else {
          return v;
        }
      },
      lit.value);
}

cim::Json operand_json(const ast::Operand& op) {
  cim::Json j = cim::Json::object();
  if (const auto* path = std::get_if<ast::PropertyPath>(&op)) {
    j["property"] = path->dotted();
    j["at"] = format_position(path->pos());
  } else if (const auto* lit = std::get_if<ast::Literal>(&op)) {
    j["literal"] = literal_json(*lit);
    j["at"] = format_position(lit->pos);
  } else {
    const ast::Call& call = *std::get<ast::CallBox>(op);
    j["function"] = ast::function_name(call.function);
    if (!call.datepart.empty()) j["datepart"] = call.datepart;
    cim::Json args = cim::Json::array();
    for (const auto& arg : call.args) args.push_back(operand_json(arg));
    j["args"] = std::move(args);
    j["at"] = format_position(call.pos);
  }
  return j;
}

cim::Json paths_json(const std::vector<ast::PropertyPath>& paths) {
  cim::Json j = cim::Json::array();
  for (const auto& p : paths) j.push_back(p.dotted());
  return j;
}

const char* op_text(const ast::Expr& e) {
  switch (e.kind) {
    case ast::ExprKind::kAnd: return "AND";
    case ast::ExprKind::kOr: return "OR";
    case ast::ExprKind::kNot: return "NOT";
    case ast::ExprKind::kCompare: return ast::compare_op_text(e.op);
    case ast::ExprKind::kLike: return e.negated ? "NOT LIKE" : "LIKE";
    case ast::ExprKind::kIsNull: return e.negated ? "IS NOT NULL" : "IS NULL";
    case ast::ExprKind::kIsa: return "ISA";
    case ast::ExprKind::kIn: return e.negated ? "NOT IN" : "IN";
  }
  return "?";
}

cim::Json expr_json(const ast::Expr& e) {
  cim::Json j = cim::Json::object();
  j["op"] = op_text(e);
  j["at"] = format_position(e.pos);
  if (e.kind == ast::ExprKind::kAnd || e.kind == ast::ExprKind::kOr || e.kind == ast::ExprKind::kNot) {
    cim::Json args = cim::Json::array();
    for (const auto& child : e.children) args.push_back(expr_json(child));
    j["args"] = std::move(args);
    return j;
  }
  j["left"] = operand_json(e.lhs);
  if (e.kind == ast::ExprKind::kIn && !e.subquery.empty()) {
    j["subquery"] = to_json(e.subquery.front());
    return j;
  }
  if (e.kind == ast::ExprKind::kIn) {
    cim::Json list = cim::Json::array();
    for (const auto& lit : e.list) list.push_back(operand_json(ast::Operand(lit)));
    j["list"] = std::move(list);
    return j;
  }
  if (e.kind != ast::ExprKind::kIsNull) j["right"] = operand_json(e.rhs);
  return j;
}

}  // namespace

cim::Json to_json(const ast::Query& q) {
  cim::Json j = cim::Json::object();
  j["select"] = q.select.empty() ? cim::Json("*") : paths_json(q.select);
  if (q.distinct) j["distinct"] = true;
  if (q.count) j["count"] = true;
  j["from"] = q.from_class;
  if (!q.from_alias.empty()) j["alias"] = q.from_alias;
  if (!q.joins.empty()) {
    cim::Json joins = cim::Json::array();
    for (const ast::Join& join : q.joins) {
      cim::Json t = cim::Json::object();
      t["kind"] = join.kind == ast::JoinKind::kInner ? "INNER" : join.kind == ast::JoinKind::kLeft ? "LEFT" : "LIST";
      t["class"] = join.cls.name;
      if (!join.cls.alias.empty()) t["alias"] = join.cls.alias;
      t["at"] = format_position(join.pos);
      if (join.on) t["on"] = expr_json(*join.on);
      joins.push_back(std::move(t));
    }
    j["joins"] = std::move(joins);
  }
  if (q.within) j["within"] = *q.within;
  if (q.where) j["where"] = expr_json(*q.where);
  if (!q.order_by.empty()) {
    cim::Json order = cim::Json::array();
    for (const auto& term : q.order_by) {
      cim::Json t = cim::Json::object();
      t["property"] = term.path.dotted();
      t["descending"] = term.descending;
      t["at"] = format_position(term.path.pos());
      order.push_back(std::move(t));
    }
    j["order_by"] = std::move(order);
  }
  if (q.group) {
    cim::Json g = cim::Json::object();
    g["within"] = q.group->within;
    if (!q.group->by.empty()) g["by"] = paths_json(q.group->by);
    if (q.group->having) g["having"] = expr_json(*q.group->having);
    j["group"] = std::move(g);
  }
  return j;
}

}  // namespace pkgcast::wql
