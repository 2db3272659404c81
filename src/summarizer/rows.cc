// Row helpers. The classes are builtin, so a missing class or property is a programming error caught by the tests
// (asserted), not a runtime condition.
#include <cassert>
#include <limits>

#include "summarizer/internal.h"

namespace pkgcast::summarizer::internal {
namespace {

const cim::ClassDef& must_find(const cim::ClassRegistry& registry, std::string_view name) {
  const cim::ClassDef* cls = registry.find(name);
  assert(cls != nullptr);
  return *cls;
}

}  // namespace

Classes::Classes(const cim::ClassRegistry& r)
    : package(must_find(r, "SMS_Package")),
      site(must_find(r, "SMS_Site")),
      advertisement(must_find(r, "SMS_Advertisement")),
      offer(must_find(r, "PKG_AdvertisementOffer")),
      dist_points(must_find(r, "SMS_PackageStatusDistPointsSummarizer")),
      detail(must_find(r, "SMS_PackageStatusDetailSummarizer")),
      root(must_find(r, "SMS_PackageStatusRootSummarizer")),
      extra(must_find(r, "SMS_ObjectContentExtraInfo")),
      dp_message(must_find(r, "SMS_DistributionDPStatus")),
      dp_status(must_find(r, "SMS_DPStatusInfo")) {}

void set_prop(cim::Instance& inst, std::string_view name, cim::Value v) {
  const auto index = inst.class_def().find_property(name);
  assert(index.has_value());
  inst.set(*index, std::move(v));
}

std::string get_text(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  return v == nullptr || v->is_null() ? std::string() : v->as_string();
}

std::uint64_t get_uint(const cim::Instance& inst, std::string_view name) {
  const cim::Value* v = inst.find(name);
  return v == nullptr || v->is_null() ? 0 : v->as_uint();
}

Status add_count(cim::Instance& inst, std::string_view property, std::int64_t delta) {
  if (delta == 0) return ok_status();
  const std::int64_t now = static_cast<std::int64_t>(get_uint(inst, property)) + delta;
  if (now < 0 || now > std::numeric_limits<std::uint32_t>::max()) {
    return make_error(WbemCode::kFailed, inst.relpath() + " " + std::string(property) + " would become " +
                                             std::to_string(now) +
                                             ": the summaries were already inconsistent (run `pkgcast admin check`)");
  }
  set_prop(inst, property, u32_value(static_cast<std::uint64_t>(now)));
  return ok_status();
}

store::Predicate where_text(const cim::ClassDef& cls, std::string_view property, std::string_view value) {
  const auto index = cls.find_property(property);
  assert(index.has_value());
  return store::Predicate::compare(*index, store::Predicate::Op::kEq, cim::Value::string(std::string(value)));
}

Result<std::vector<cim::Instance>> scan_where(store::WriteTxn& txn, const cim::ClassDef& cls, std::string_view property,
                                              std::string_view value) {
  std::vector<cim::Instance> out;
  // The predicate is a pre-filter (store.h): the exact comparison is made here.
  PKG_TRY(txn.scan(cls, where_text(cls, property, value), [&](cim::Instance&& inst) {
    if (iequals(get_text(inst, property), value)) out.push_back(std::move(inst));
    return true;
  }));
  return out;
}

Result<cim::Instance> require(store::WriteTxn& txn, const cim::ClassDef& cls, std::vector<cim::Value> key,
                              std::string_view what) {
  PKG_ASSIGN_OR_RETURN(auto row, txn.get(cls, key));
  if (!row) return make_error(WbemCode::kNotFound, std::string(what) + " does not exist");
  return std::move(*row);
}

void PackageDeltas::add(const DpRef& dp_ref, const Counts& delta) {
  package += delta;
  site[to_upper(dp_ref.site_code)] += delta;
  const std::string nal = to_lower(dp_ref.nal_path);
  dp[nal] += delta;
  dp_nal.emplace(nal, dp_ref.nal_path);
}

}  // namespace pkgcast::summarizer::internal
