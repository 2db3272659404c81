// Distribution verbs (design.md section 6): distribute, redistribute, remove, validate, cancel, and `admin check`.
// Each is one call to the HTTP API (docs/http-resources.md, "Distribution").
#include <iostream>
#include <memory>
#include <optional>
#include <set>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/verb.h"

namespace pkgcast::cli {
namespace {

using cim::Json;

const std::vector<std::string> kDistPointsColumns = {"PackageID", "ServerNALPath", "SiteCode", "State",
                                                     "SourceVersion", "InstallStatus"};

void print_rows(const Json& j) {
  if (j.is_array()) {
    print_table(rows_of(j), kDistPointsColumns);
  } else {
    print_table({j}, kDistPointsColumns);
  }
}

}  // namespace

void add_distribution_commands(CLI::App& app, CliContext& ctx) {
  struct Args {
    std::string package_id, dp;
    std::vector<std::string> dps, sites, groups;
  };
  auto a = std::make_shared<Args>();

  auto* distribute = verb(&app, ctx, "distribute", "Send a package's content to DPs (by name, site or group)", [&ctx, a] {
    if (a->dps.empty() && a->sites.empty() && a->groups.empty()) {
      std::cerr << "usage error: distribute needs at least one --dp, --site or --group\n"
                   "(run `pkgcast distribute --help`)"
                << std::endl;
      return kExitUsage;
    }
    Json body = Json::object();
    if (!a->dps.empty()) body["dps"] = a->dps;
    if (!a->sites.empty()) body["sites"] = a->sites;
    if (!a->groups.empty()) body["groups"] = a->groups;
    return answer(ctx, "POST", "/api/v1/packages/" + segment(a->package_id) + "/distribute", &body, print_rows);
  });
  distribute->add_option("package_id", a->package_id, "PackageID")->required();
  distribute->add_option("--dp", a->dps, "a distribution point (repeatable)");
  distribute->add_option("--site", a->sites, "every DP of a site (repeatable)");
  distribute->add_option("--group", a->groups, "every DP of a DP group (repeatable)");

  struct OneDp {
    const char* name;
    const char* help;
    const char* route;
    bool dp_required;
  };
  for (const OneDp& v :
       {OneDp{"redistribute",
              "Send the package again to one DP (same version): every file there is checked, and what differs is sent",
              "redistribute", true},
        OneDp{"remove", "Remove a package's content from one DP", "remove", true},
        OneDp{"validate", "Re-hash a package's content on its DPs (or one DP)", "validate", false},
        OneDp{"cancel", "Stop a distribution to one DP", "cancel", true}}) {
    const std::string route = v.route;
    auto* cmd = verb(&app, ctx, v.name, v.help, [&ctx, a, route] {
      Json body = Json::object();
      if (!a->dp.empty()) body["dp"] = a->dp;
      return answer(ctx, "POST", "/api/v1/packages/" + segment(a->package_id) + "/" + route, &body, print_rows);
    });
    cmd->add_option("package_id", a->package_id, "PackageID")->required();
    auto* dp = cmd->add_option("--dp", a->dp, "the distribution point");
    if (v.dp_required) dp->required();
  }

  auto* admin = app.add_subcommand("admin", "Site server administration");
  admin->require_subcommand(1);
  verb(admin, ctx, "check", "Recompute every summary from the DistPoints rows and report any difference", [&ctx] {
    auto r = ctx.call("GET", "/api/v1/admin/check");
    if (!r.ok()) return ctx.fail(r.error());
    const Json& differences = (*r)["differences"];
    // A difference is a defect in the summaries: scripts see it in the exit code, with the error line every exit 1
    // has (and, with --json, the error's name in the one document printed).
    // A difference is one property of one summary row: the message counts the rows, then the values.
    std::optional<Error> defect;
    if (!differences.empty()) {
      std::set<std::pair<std::string, std::string>> rows;
      for (const Json& d : differences) rows.emplace(d.value("class", ""), d.value("key", ""));
      const std::string values =
          " (" + std::to_string(differences.size()) + (differences.size() == 1 ? " value)" : " values)");
      defect = make_error(WbemCode::kFailed,
                          rows.size() == 1
                              ? "1 summary differs from its recomputation" + values
                              : std::to_string(rows.size()) + " summaries differ from their recomputation" + values);
    }
    if (ctx.options.json) {
      Json out = *r;
      if (defect) {
        out["error"] = wbem_name(defect->code);
        out["hresult"] = wbem_hresult(defect->code);
        out["message"] = defect->message;
      }
      ctx.print_json(out);
    } else if (!defect) {
      std::cout << "every summary matches its recomputation" << std::endl;
    } else {
      for (const auto& d : differences) std::cout << cell_text(d["text"]) << std::endl;
    }
    return defect ? ctx.fail(*defect, /*json_object=*/false) : kExitOk;
  });
}

}  // namespace pkgcast::cli
