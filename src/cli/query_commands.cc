// `pkgcast query` (against the server) and `pkgcast wql parse` (offline).
#include <iostream>

#include "cim/class_def.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "wql/wql.h"

namespace pkgcast::cli {
namespace {

int run_query(CliContext& ctx, const std::string& text) {
  cim::Json body = {{"query", text}};
  if (!ctx.options.namespace_path.empty()) body["namespace"] = ctx.options.namespace_path;
  ctx.namespace_in_requests = true;
  auto answer = ctx.call("POST", "/api/v1/query", &body);
  if (!answer.ok()) return ctx.fail(answer.error());
  const cim::Json& j = answer.value();
  if (!j.is_object() || !j.contains("instances") || !j["instances"].is_array()) {
    return ctx.fail(make_error(WbemCode::kFailed, "the server's answer has no \"instances\" array"));
  }
  std::vector<cim::Json> rows(j["instances"].begin(), j["instances"].end());
  if (ctx.options.json) {
    ctx.print_json(j["instances"]);
  } else {
    print_table(rows);
  }
  // A query that failed after its first rows were sent ends its answer with the error.
  if (j.contains("error") && j["error"].is_object()) {
    const auto& e = j["error"];
    const std::string name = e.contains("error") && e["error"].is_string() ? e["error"].get<std::string>() : "";
    const std::string message = e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
    return ctx.fail(make_error(wbem_code_from_name(name).value_or(WbemCode::kFailed), message));
  }
  return kExitOk;
}

int run_wql_parse(CliContext& ctx, const std::string& text) {
  auto parsed = wql::parse(text);
  if (!parsed.ok()) return ctx.fail(parsed.error());
  auto bound = wql::bind(parsed.value(), cim::ClassRegistry::builtin());
  if (!bound.ok()) return ctx.fail(bound.error());
  const std::string canonical = wql::print(parsed.value());
  const std::vector<std::string> classes = wql::bound_classes(bound.value());
  if (ctx.options.json) {
    cim::Json j = wql::to_json(parsed.value());
    j["canonical"] = canonical;
    j["classes"] = classes;
    ctx.print_json(j);
    return kExitOk;
  }
  std::cout << canonical << '\n';
  std::string list;
  for (const auto& c : classes) list += (list.empty() ? "" : ", ") + c;
  std::cout << "classes: " << list << std::endl;
  return kExitOk;
}

}  // namespace

void add_query_commands(CLI::App& app, CliContext& ctx) {
  auto* query = app.add_subcommand("query", "Run a WQL data query against the server");
  auto text = std::make_shared<std::string>();
  query->add_option("wql", *text, "the query, e.g. \"SELECT * FROM SMS_Package\"")->required();
  query->callback([&ctx, text] { ctx.action = [&ctx, text] { return run_query(ctx, *text); }; });

  auto* wql = app.add_subcommand("wql", "Work with WQL offline");
  wql->require_subcommand(1);
  auto* parse = wql->add_subcommand("parse", "Check a query: print its canonical form and the classes it binds, or the error");
  auto parse_text = std::make_shared<std::string>();
  parse->add_option("wql", *parse_text, "the query")->required();
  parse->callback([&ctx, parse_text] { ctx.action = [&ctx, parse_text] { return run_wql_parse(ctx, *parse_text); }; });
}

}  // namespace pkgcast::cli
