// The small public helpers of store.h: predicates, change kinds, keys.
#include "store/store.h"

namespace pkgcast::store {

std::string_view change_kind_name(ChangeKind k) {
  switch (k) {
    case ChangeKind::kCreated: return "created";
    case ChangeKind::kModified: return "modified";
    case ChangeKind::kDeleted: return "deleted";
  }
  return "unknown";
}

Predicate Predicate::compare(std::size_t property, Op op, cim::Value value) {
  Predicate p;
  p.kind = Kind::kCompare;
  p.op = op;
  p.property = property;
  p.value = std::move(value);
  return p;
}

Predicate Predicate::like(std::size_t property, std::string sql_pattern) {
  Predicate p;
  p.kind = Kind::kLike;
  p.property = property;
  p.pattern = std::move(sql_pattern);
  return p;
}

Predicate Predicate::is_null(std::size_t property, bool negated) {
  Predicate p;
  p.kind = negated ? Kind::kIsNotNull : Kind::kIsNull;
  p.property = property;
  return p;
}

Predicate Predicate::all_of(std::vector<Predicate> children) {
  Predicate p;
  p.kind = Kind::kAnd;
  p.children = std::move(children);
  return p;
}

Predicate Predicate::any_of(std::vector<Predicate> children) {
  Predicate p;
  p.kind = Kind::kOr;
  p.children = std::move(children);
  return p;
}

Result<std::uint64_t> Store::count(const cim::ClassDef& cls, const Predicate& filter) {
  std::uint64_t n = 0;
  PKG_TRY(scan(cls, filter, [&n](cim::Instance&&) {
    ++n;
    return true;
  }));
  return n;
}

std::vector<cim::Value> key_of(const cim::Instance& inst) {
  std::vector<cim::Value> key;
  for (std::size_t i : inst.class_def().key_indices()) key.push_back(inst.get(i));
  return key;
}

}  // namespace pkgcast::store
