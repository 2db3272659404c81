#include "wql/ast.h"

namespace pkgcast::wql::ast {

std::string PropertyPath::dotted() const {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += '.';
    out += part;
  }
  return out;
}

bool Literal::is_number() const {
  return std::holds_alternative<std::int64_t>(value) || std::holds_alternative<std::uint64_t>(value) ||
         std::holds_alternative<double>(value);
}

// Positions are left out of every comparison below on purpose: equality is about meaning.
bool operator==(const PropertyPath& a, const PropertyPath& b) { return a.parts == b.parts; }

bool operator==(const Literal& a, const Literal& b) { return a.value == b.value; }

CallBox::CallBox(Call call) : call_(std::make_unique<Call>(std::move(call))) {}
CallBox::CallBox(const CallBox& other) : call_(std::make_unique<Call>(*other.call_)) {}
CallBox::CallBox(CallBox&& other) noexcept : call_(std::make_unique<Call>()) { call_.swap(other.call_); }
CallBox& CallBox::operator=(const CallBox& other) {
  if (this != &other) call_ = std::make_unique<Call>(*other.call_);
  return *this;
}
CallBox& CallBox::operator=(CallBox&& other) noexcept {
  call_.swap(other.call_);
  return *this;
}
CallBox::~CallBox() = default;

bool operator==(const Call& a, const Call& b) {
  return a.function == b.function && a.datepart == b.datepart && a.args == b.args;
}
bool operator==(const CallBox& a, const CallBox& b) { return *a == *b; }

const char* function_name(Function f) {
  switch (f) {
    case Function::kUpper: return "UPPER";
    case Function::kLower: return "LOWER";
    case Function::kSubstring: return "SUBSTRING";
    case Function::kDatePart: return "DATEPART";
    case Function::kDateDiff: return "DATEDIFF";
    case Function::kDateAdd: return "DATEADD";
    case Function::kGetDate: return "GETDATE";
  }
  return "?";
}

Position operand_pos(const Operand& op) {
  if (const auto* path = std::get_if<PropertyPath>(&op)) return path->pos();
  if (const auto* lit = std::get_if<Literal>(&op)) return lit->pos;
  return std::get<CallBox>(op)->pos;
}

bool operator==(const Expr& a, const Expr& b) {
  return a.kind == b.kind && a.op == b.op && a.negated == b.negated && a.lhs == b.lhs && a.rhs == b.rhs &&
         a.list == b.list && a.subquery == b.subquery && a.children == b.children;
}

bool operator==(const GroupClause& a, const GroupClause& b) {
  return a.within == b.within && a.by == b.by && a.having == b.having;
}

bool operator==(const OrderTerm& a, const OrderTerm& b) {
  return a.path == b.path && a.descending == b.descending;
}

bool operator==(const ClassRef& a, const ClassRef& b) { return a.name == b.name && a.alias == b.alias; }

bool operator==(const Join& a, const Join& b) { return a.kind == b.kind && a.cls == b.cls && a.on == b.on; }

bool operator==(const Query& a, const Query& b) {
  return a.select == b.select && a.distinct == b.distinct && a.count == b.count && a.from_class == b.from_class &&
         a.from_alias == b.from_alias && a.joins == b.joins && a.within == b.within && a.where == b.where &&
         a.group == b.group && a.order_by == b.order_by;
}

const char* compare_op_text(CompareOp op) {
  switch (op) {
    case CompareOp::kEq: return "=";
    case CompareOp::kNe: return "<>";
    case CompareOp::kLt: return "<";
    case CompareOp::kGt: return ">";
    case CompareOp::kLe: return "<=";
    case CompareOp::kGe: return ">=";
  }
  return "?";
}

}  // namespace pkgcast::wql::ast
