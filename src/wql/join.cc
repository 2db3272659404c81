// The in-memory join (wql.h, join_rows): nested loops over the candidates, with a hash lookup wherever a JoinKey
// says which partners can make the conditions TRUE.
#include <array>
#include <string>
#include <unordered_map>

#include "wql/limits.h"
#include "wql/scalar.h"
#include "wql/wql.h"

namespace pkgcast::wql {
namespace {

class Joiner {
 public:
  Joiner(const BoundQuery& q, const std::vector<std::vector<const cim::Instance*>>& candidates,
         const std::function<bool(JoinedRow)>& visit, const std::function<bool(std::uint64_t)>& keep_going)
      : q_(q), candidates_(candidates), visit_(visit), keep_going_(keep_going), index_(candidates.size()) {
    for (std::size_t t = 1; t < candidates_.size(); ++t) {
      const auto& key = q_.tables()[t].key;
      if (!key) continue;
      for (std::size_t i = 0; i < candidates_[t].size(); ++i) {
        if (auto text = join_key_text(candidates_[t][i]->get(key->inner.index), key->domain)) {
          index_[t][std::move(*text)].push_back(i);
        }
      }
    }
  }

  // The first class's candidates from `first` on, each joined in full; between two of them, `pause` may end the
  // run. Returns where to go on (candidates[0].size() when done, or when the visitor or keep_going stopped it).
  std::size_t run(std::size_t first, const std::function<bool()>& pause) {
    const auto& outer = candidates_[0];
    for (std::size_t i = first; i < outer.size(); ++i) {
      if (++tried_ % kJoinTriesPerCheck == 0 && keep_going_ && !keep_going_(kJoinTriesPerCheck)) break;
      row_[0] = outer[i];
      if (!extend(1)) break;
      if (pause && i + 1 < outer.size() && pause()) return i + 1;
    }
    return outer.size();
  }

  std::uint64_t tried() const { return tried_; }

 private:
  JoinedRow prefix(std::size_t n) const { return JoinedRow(row_.data(), n); }

  // Fills row_[t..] in every way the conditions allow; false once the visitor asked to stop.
  bool extend(std::size_t t) {
    const std::size_t n = candidates_.size();
    if (t == n) return !matches_row(q_, prefix(n)) || visit_(prefix(n));
    const BoundTable& table = q_.tables()[t];
    bool partnered = false;
    auto try_one = [&](const cim::Instance* inst) {
      if (++tried_ % kJoinTriesPerCheck == 0 && keep_going_ && !keep_going_(kJoinTriesPerCheck)) return false;
      row_[t] = inst;
      if (t > 0 && evaluate_on(q_, t, prefix(t + 1)) != Truth::kTrue) return true;
      partnered = true;
      return extend(t + 1);
    };
    if (t > 0 && table.key) {
      const cim::Instance* outer = row_[table.key->outer.table];
      const auto text = outer == nullptr ? std::nullopt
                                         : join_key_text(outer->get(table.key->outer.index), table.key->domain);
      if (text) {
        const auto it = index_[t].find(*text);
        if (it != index_[t].end()) {
          for (std::size_t i : it->second) {
            if (!try_one(candidates_[t][i])) return false;
          }
        }
      }
    } else {
      for (const cim::Instance* inst : candidates_[t]) {
        if (!try_one(inst)) return false;
      }
    }
    row_[t] = nullptr;
    if (!partnered && table.kind == ast::JoinKind::kLeft) return extend(t + 1);
    return true;
  }

  const BoundQuery& q_;
  const std::vector<std::vector<const cim::Instance*>>& candidates_;
  const std::function<bool(JoinedRow)>& visit_;
  const std::function<bool(std::uint64_t)>& keep_going_;
  std::uint64_t tried_ = 0;
  std::vector<std::unordered_map<std::string, std::vector<std::size_t>>> index_;  // per class with a JoinKey
  std::array<const cim::Instance*, kMaxJoinedClasses> row_{};
};

}  // namespace

std::optional<std::string> join_key_text(const cim::Value& v, Domain domain) {
  const Scalar s = scalar_of(v);
  switch (s.kind) {
    case Scalar::Kind::kString:
      if (domain != Domain::kString) return std::nullopt;
      return to_lower(s.s);
    case Scalar::Kind::kSint: return domain == Domain::kNumber ? std::optional(std::to_string(s.i)) : std::nullopt;
    case Scalar::Kind::kUint: return domain == Domain::kNumber ? std::optional(std::to_string(s.u)) : std::nullopt;
    default: return std::nullopt;
  }
}

int order_values(const cim::Value& a, const cim::Value& b) {
  using K = Scalar::Kind;
  const Scalar x = scalar_of(a);
  const Scalar y = scalar_of(b);
  if (x.kind == K::kNull || y.kind == K::kNull) return three_way(y.kind == K::kNull, x.kind == K::kNull);
  int c = 0;
  if (compare_numbers(x, y, &c)) return c;
  if (x.kind != y.kind) return 0;
  switch (x.kind) {
    case K::kString: return icompare(x.s, y.s);
    case K::kDateTime: return three_way(x.i, y.i);
    case K::kBool: return three_way(x.b, y.b);
    default: return 0;
  }
}

std::uint64_t join_rows(const BoundQuery& q, const std::vector<std::vector<const cim::Instance*>>& candidates,
                        const std::function<bool(JoinedRow)>& visit,
                        const std::function<bool(std::uint64_t tried)>& keep_going) {
  Joiner joiner(q, candidates, visit, keep_going);
  joiner.run(0, {});
  return joiner.tried();
}

std::size_t join_rows_from(const BoundQuery& q, const std::vector<std::vector<const cim::Instance*>>& candidates,
                           std::size_t first_outer, const std::function<bool(JoinedRow)>& visit,
                           const std::function<bool(std::uint64_t tried)>& keep_going,
                           const std::function<bool()>& pause) {
  if (candidates.empty()) return 0;
  return Joiner(q, candidates, visit, keep_going).run(first_outer, pause);
}

}  // namespace pkgcast::wql
