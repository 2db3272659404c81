// The journal's JSON, written straight into a string, is byte for byte what cim::to_json(...).dump() gives (the
// form readers decode), for every type and every character class; a delta decodes back to the previous instance.
#include "store/row_codec.h"

#include <gtest/gtest.h>

#include <random>

namespace pkgcast::store {
namespace {

using cim::CimType;
using cim::Value;

cim::PropertyDef prop_def(std::string n, CimType t, bool array = false, bool key = false) {
  return cim::PropertyDef{std::move(n), cim::Type{t, array}, key, false, "", false, {}, false};
}

const cim::ClassRegistry& registry() {
  static const cim::ClassRegistry r =
      std::move(cim::ClassRegistry::build({{"Test_Every",
                                            "",
                                            {prop_def("Id", CimType::kString, false, true),
                                             prop_def("Ref", CimType::kReference), prop_def("B", CimType::kBoolean),
                                             prop_def("S8", CimType::kSint8), prop_def("S64", CimType::kSint64),
                                             prop_def("U8", CimType::kUint8), prop_def("U32", CimType::kUint32),
                                             prop_def("U64", CimType::kUint64), prop_def("R32", CimType::kReal32),
                                             prop_def("R64", CimType::kReal64), prop_def("When", CimType::kDateTime),
                                             prop_def("Tags", CimType::kString, true),
                                             prop_def("Inner", CimType::kObject),
                                             prop_def("Counts", CimType::kUint32, true),
                                             prop_def("Times", CimType::kDateTime, true),
                                             prop_def("Flags", CimType::kBoolean, true)},
                                            false,
                                            ""}}))
          .value();
  return r;
}

// Text with every kind of character the escaping distinguishes: quote, backslash, each control character,
// DEL, and multi-byte UTF-8, between runs of plain text long enough to be read eight bytes at a time.
std::string tricky(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {"\"", "\\", "/", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x93\xa6",
                                                  "plain", " ", "a longer run of plain text, 33 bytes"};
  std::string s;
  const int n = std::uniform_int_distribution<int>(0, 6)(rng);
  for (int i = 0; i < n; ++i) {
    if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) {
      s += static_cast<char>(std::uniform_int_distribution<int>(1, 0x1f)(rng));
    } else {
      s += pieces[std::uniform_int_distribution<std::size_t>(0, pieces.size() - 1)(rng)];
    }
  }
  return s;
}

cim::Instance random_instance(std::mt19937& rng, int depth = 0) {
  const cim::ClassDef& c = *registry().find("Test_Every");
  cim::Instance inst(c);
  auto coin = [&] { return std::uniform_int_distribution<int>(0, 3)(rng) != 0; };  // mostly set, sometimes NULL
  inst.set(0, Value::string(tricky(rng)));
  if (coin()) inst.set(1, Value::reference("Test_Every.Id=\"" + tricky(rng) + "\""));
  if (coin()) inst.set(2, Value::boolean(coin()));
  if (coin()) inst.set(3, Value::sint(CimType::kSint8, std::uniform_int_distribution<int>(-128, 127)(rng)));
  if (coin()) inst.set(4, Value::sint(CimType::kSint64, static_cast<std::int64_t>(rng()) * (coin() ? 1 : -1)));
  if (coin()) inst.set(5, Value::uint(CimType::kUint8, std::uniform_int_distribution<int>(0, 255)(rng)));
  if (coin()) inst.set(6, Value::uint32(static_cast<std::uint32_t>(rng())));
  if (coin()) inst.set(7, Value::uint64(static_cast<std::uint64_t>(rng()) << 31));
  if (coin()) inst.set(8, Value::real(CimType::kReal32, 0.25 * std::uniform_int_distribution<int>(-99, 99)(rng)));
  if (coin()) inst.set(9, Value::real(CimType::kReal64, std::uniform_real_distribution<double>(-1e9, 1e9)(rng)));
  if (coin()) {
    inst.set(10, Value::datetime(cim::DateTime::from_unix_micros(
                     std::uniform_int_distribution<std::int64_t>(0, 4'000'000'000'000'000)(rng))));
  }
  if (coin()) inst.set(11, Value::array(CimType::kString, {Value::string(tricky(rng)), Value(), Value::string("x")}));
  if (depth == 0 && coin()) inst.set(12, Value::object(std::make_shared<const cim::Instance>(random_instance(rng, 1))));
  if (coin()) inst.set(13, Value::array(CimType::kUint32, {Value::uint32(static_cast<std::uint32_t>(rng())), Value()}));
  if (coin()) {
    inst.set(14, Value::array(CimType::kDateTime, {Value::datetime(cim::DateTime::from_unix_micros(
                                                       std::uniform_int_distribution<std::int64_t>(0, 1LL << 52)(rng)))}));
  }
  if (coin()) inst.set(15, Value::array(CimType::kBoolean, {Value::boolean(coin()), Value::boolean(true)}));
  if (coin()) inst.set_revision(rng());
  return inst;
}

TEST(RowCodecTest, JournalJsonIsWhatTheCimFormPrints) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const cim::Instance inst = random_instance(rng);
    auto text = instance_to_json_text(inst);
    ASSERT_TRUE(text.ok()) << text.error().to_string();
    ASSERT_EQ(*text, cim::to_json(inst).dump()) << i;
    auto back = instance_from_json_text(*text, registry());
    ASSERT_TRUE(back.ok()) << back.error().to_string();
  }
}

// An array or object column holds the same text.
TEST(RowCodecTest, ArrayColumnsHoldWhatTheCimFormPrints) {
  std::mt19937 rng(5);
  const cim::ClassDef& c = *registry().find("Test_Every");
  for (int i = 0; i < 500; ++i) {
    const cim::Instance inst = random_instance(rng);
    for (std::size_t p : {std::size_t{11}, std::size_t{12}, std::size_t{13}, std::size_t{14}, std::size_t{15}}) {
      if (inst.get(p).is_null()) continue;
      auto param = encode_value(inst.get(p), c.property(p).type, c.property(p).name);
      ASSERT_TRUE(param.ok()) << param.error().to_string();
      ASSERT_EQ(std::get<std::string>(*param), cim::to_json(inst.get(p)).dump()) << i << " " << p;
    }
  }
}

TEST(RowCodecTest, ADeltaHoldsWhatChangedAndDecodesToThePreviousInstance) {
  std::mt19937 rng(11);
  for (int i = 0; i < 2000; ++i) {
    cim::Instance now = random_instance(rng);
    now.set_revision(std::nullopt);
    cim::Instance previous = random_instance(rng);
    previous.set_revision(std::nullopt);
    previous.set(0, now.get(0));  // the same row
    if (i % 3 == 0) previous.set(6, now.get(6));
    auto delta = previous_delta_json_text(now, previous);
    ASSERT_TRUE(delta.ok()) << delta.error().to_string();
    const auto j = cim::Json::parse(*delta);
    for (std::size_t p = 0; p < now.class_def().properties().size(); ++p) {
      const std::string& name = now.class_def().property(p).name;
      EXPECT_EQ(j.contains(name), !(now.get(p) == previous.get(p))) << name;
    }
    auto back = previous_from_json_text(*delta, now, registry());
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    // Reals go through JSON's decimal form, as the whole instances always did.
    auto whole = instance_from_json_text(cim::to_json(previous).dump(), registry());
    ASSERT_TRUE(whole.ok());
    EXPECT_EQ(*back, *whole) << *delta;
  }
}

TEST(RowCodecTest, TextThatIsNotUtf8IsRefused) {
  const cim::ClassDef& c = *registry().find("Test_Every");
  cim::Instance inst(c);
  inst.set(0, Value::string("ok"));
  inst.set(11, Value::array(CimType::kString, {Value::string("bad \xff")}));
  EXPECT_EQ(instance_to_json_text(inst).error().code, WbemCode::kInvalidParameter);
  inst.set(11, Value());
  inst.set(1, Value::reference("bad \xc3"));
  EXPECT_EQ(instance_to_json_text(inst).error().code, WbemCode::kInvalidParameter);
  cim::Instance previous = inst;
  previous.set(1, Value::string("fine"));
  inst.set(1, Value());
  EXPECT_TRUE(previous_delta_json_text(inst, previous).ok());
  previous.set(1, Value::reference("\xed\xa0\x80"));  // a surrogate
  EXPECT_EQ(previous_delta_json_text(inst, previous).error().code, WbemCode::kInvalidParameter);
}

}  // namespace
}  // namespace pkgcast::store
