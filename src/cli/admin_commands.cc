// The administrative verbs: site, dp, group, package, program, advertisement, token. Each is one call to the HTTP
// API (docs/http-resources.md); this file only turns flags into request bodies and answers into output.
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/verb.h"
#include "cli/output.h"
#include "client/url.h"
#include "site/identity.h"

namespace pkgcast::cli {

std::string segment(const std::string& s) { return client::url_encode(s); }

std::vector<cim::Json> rows_of(const cim::Json& j) {
  if (!j.is_array()) return {};
  return std::vector<cim::Json>(j.begin(), j.end());
}

// Registers `parent verb`, whose work runs `fn` after parsing.
CLI::App* verb(CLI::App* parent, CliContext& ctx, const std::string& name, const std::string& help,
               std::function<int()> fn) {
  auto* cmd = parent->add_subcommand(name, help);
  cmd->callback([&ctx, fn = std::move(fn)] { ctx.action = fn; });
  return cmd;
}

// Runs a call and prints its answer: JSON with --json, else what `human` prints.
int answer(CliContext& ctx, std::string_view method, const std::string& target, const cim::Json* body,
           const std::function<void(const cim::Json&)>& human) {
  auto r = ctx.call(method, target, body);
  if (!r.ok()) return ctx.fail(r.error());
  if (ctx.options.json) {
    ctx.print_json(r.value().is_null() ? cim::Json::object() : r.value());
  } else {
    human(r.value());
  }
  return kExitOk;
}

namespace {

using cim::Json;

// Shows SMS_Site.Type by name, as the command line takes it.
Json with_site_type_names(Json rows) {
  for (auto& row : rows) {
    if (row.contains("Type") && row["Type"].is_number_unsigned()) {
      const auto t = row["Type"].get<std::uint64_t>();
      const auto type = static_cast<site::SiteType>(t);
      const bool known = type == site::SiteType::kSecondary || type == site::SiteType::kPrimary ||
                         type == site::SiteType::kCentral;
      row["Type"] = known ? std::string(site::site_type_name(type)) : std::to_string(t);
    }
  }
  return rows;
}

void set_if(Json& body, const char* name, const std::string& value) {
  if (!value.empty()) body[name] = value;
}

void add_site_commands(CLI::App& app, CliContext& ctx) {
  auto* site = app.add_subcommand("site", "Sites of the hierarchy");
  site->require_subcommand(1);
  struct Args {
    std::string code, name, parent, type;
  };
  auto a = std::make_shared<Args>();
  auto* create = verb(site, ctx, "create", "Create a site", [&ctx, a] {
    Json body = {{"code", a->code}, {"name", a->name}};
    set_if(body, "parent", a->parent);
    set_if(body, "type", a->type);
    return answer(ctx, "POST", "/api/v1/sites", &body, [](const Json& j) {
      std::cout << "created site " << cell_text(j["SiteCode"]) << " (" << cell_text(j["SiteName"]) << ")" << std::endl;
    });
  });
  create->add_option("code", a->code, "3-character site code, e.g. ABC")->required();
  create->add_option("--name", a->name, "site name")->required();
  create->add_option("--parent", a->parent, "parent site code");
  create->add_option("--type", a->type, "central, primary or secondary (default primary)")
      ->check(CLI::IsMember({std::string(site::site_type_name(site::SiteType::kCentral)),
                                std::string(site::site_type_name(site::SiteType::kPrimary)),
                                std::string(site::site_type_name(site::SiteType::kSecondary))},
                               CLI::ignore_case));
  verb(site, ctx, "list", "List sites", [&ctx] {
    auto r = ctx.call("GET", "/api/v1/sites");
    if (!r.ok()) return ctx.fail(r.error());
    if (ctx.options.json) {
      ctx.print_json(r.value());
    } else {
      print_table(rows_of(with_site_type_names(r.value())),
                  {"SiteCode", "SiteName", "Type", "ReportingSiteCode", "ServerName"});
    }
    return kExitOk;
  });
}

void add_dp_commands(CLI::App& app, CliContext& ctx) {
  auto* dp = app.add_subcommand("dp", "Distribution points");
  dp->require_subcommand(1);
  struct Args {
    std::string name, site, url, description;
    bool pull = false;
    std::vector<std::string> sources;
    unsigned rate = 0;
    std::string window;
  };
  auto a = std::make_shared<Args>();
  auto* add = verb(dp, ctx, "add", "Add a distribution point; prints its agent's token", [&ctx, a] {
    Json body = {{"name", a->name}, {"site", a->site}};
    set_if(body, "url", a->url);
    set_if(body, "description", a->description);
    if (a->pull) body["pull"] = true;
    if (!a->sources.empty()) body["source_dps"] = a->sources;
    if (a->rate != 0) body["transfer_rate"] = a->rate;
    set_if(body, "transfer_window", a->window);
    return answer(ctx, "POST", "/api/v1/dps", &body, [](const Json& j) { std::cout << cell_text(j["token"]) << std::endl; });
  });
  add->add_option("name", a->name, "DP host name")->required();
  add->add_option("--site", a->site, "site code")->required();
  add->add_option("--url", a->url, "where the DP agent listens, e.g. http://dp1:8751");
  add->add_option("--description", a->description, "free text");
  add->add_flag("--pull", a->pull, "a pull DP: it takes content from source DPs");
  add->add_option("--source-dp", a->sources, "source DP of a pull DP (repeat, in priority order)");
  add->add_option("--transfer-rate", a->rate, "KiB/s, 0 = unlimited")->check(kNonNegativeNumber);
  add->add_option("--transfer-window", a->window,
                  "when content may be sent, e.g. \"Mon-Fri 08-18 closed; Sat,Sun * high\" (UTC; docs/distribution.md)");
  struct SetArgs {
    std::string name;
    std::optional<std::string> description, window;
    std::optional<unsigned> rate;
  };
  auto sa = std::make_shared<SetArgs>();
  auto* set = verb(dp, ctx, "set", "Change a distribution point's description, transfer rate or transfer window",
                   [&ctx, sa] {
                     Json body = Json::object();
                     if (sa->description) body["description"] = *sa->description;
                     if (sa->rate) body["transfer_rate"] = *sa->rate;
                     if (sa->window) body["transfer_window"] = *sa->window;
                     return answer(ctx, "PATCH", "/api/v1/dps/" + segment(sa->name), &body, [](const Json& j) {
                       std::cout << cell_text(j["Name"]) << std::endl;
                     });
                   });
  set->add_option("name", sa->name, "DP name")->required();
  set->add_option("--description", sa->description, "free text");
  set->add_option("--transfer-rate", sa->rate, "KiB/s, 0 = unlimited")->check(kNonNegativeNumber);
  set->add_option("--transfer-window", sa->window, "as for dp add; \"\" opens every hour");
  verb(dp, ctx, "list", "List distribution points", [&ctx] {
    auto r = ctx.call("GET", "/api/v1/dps");
    if (!r.ok()) return ctx.fail(r.error());
    if (ctx.options.json) {
      ctx.print_json(r.value());
    } else {
      print_table(rows_of(r.value()), {"Name", "SiteCode", "IsPullDP", "url", "NALPath"});
    }
    return kExitOk;
  });
  auto rm_name = std::make_shared<std::string>();
  auto* remove = verb(dp, ctx, "remove", "Remove a distribution point (and revoke its token)", [&ctx, rm_name] {
    return answer(ctx, "DELETE", "/api/v1/dps/" + segment(*rm_name), nullptr,
                  [rm_name](const Json&) { std::cout << "removed DP " << *rm_name << std::endl; });
  });
  remove->add_option("name", *rm_name, "DP name")->required();
}

void add_group_commands(CLI::App& app, CliContext& ctx) {
  auto* group = app.add_subcommand("group", "Distribution point groups");
  group->require_subcommand(1);
  struct Args {
    std::string name, description, id;
    std::vector<std::string> dps;
  };
  auto a = std::make_shared<Args>();
  auto* create = verb(group, ctx, "create", "Create a DP group", [&ctx, a] {
    Json body = {{"name", a->name}};
    set_if(body, "description", a->description);
    return answer(ctx, "POST", "/api/v1/groups", &body,
                  [](const Json& j) { std::cout << cell_text(j["GroupID"]) << std::endl; });
  });
  create->add_option("name", a->name, "group name")->required();
  create->add_option("--description", a->description, "free text");
  verb(group, ctx, "list", "List DP groups", [&ctx] {
    return answer(ctx, "GET", "/api/v1/groups", nullptr, [](const Json& j) {
      print_table(rows_of(j), {"GroupID", "Name", "MemberCount", "ContentCount", "Description"});
    });
  });
  for (const bool adding : {true, false}) {
    auto* cmd = verb(group, ctx, adding ? "add" : "remove",
                     adding ? "Add DPs to a group" : "Remove DPs from a group", [&ctx, a, adding] {
                       Json body = {{"dps", a->dps}};
                       return answer(ctx, adding ? "POST" : "DELETE",
                                     "/api/v1/groups/" + segment(a->id) + "/members", &body, [](const Json& j) {
                                       std::cout << cell_text(j["Name"]) << ": " << cell_text(j["MemberCount"])
                                                 << " members" << std::endl;
                                     });
                     });
    cmd->add_option("group", a->id, "group id or name")->required();
    cmd->add_option("dps", a->dps, "DP names")->required();
  }
}

void add_package_commands(CLI::App& app, CliContext& ctx) {
  auto* pkg = app.add_subcommand("package", "Packages");
  pkg->require_subcommand(1);
  struct Args {
    std::string id, name, version, manufacturer, language, description, source;
    unsigned priority = 0;
  };
  auto a = std::make_shared<Args>();
  auto* create = verb(pkg, ctx, "create", "Create a package; prints its PackageID", [&ctx, a] {
    Json body = {{"name", a->name}};
    set_if(body, "version", a->version);
    set_if(body, "manufacturer", a->manufacturer);
    set_if(body, "language", a->language);
    set_if(body, "description", a->description);
    if (!a->source.empty()) {
      // The server checks the directory; a relative path means the caller's working directory.
      std::error_code ec;
      auto absolute = std::filesystem::absolute(a->source, ec);
      body["source"] = ec ? a->source : absolute.lexically_normal().string();
    }
    if (a->priority != 0) body["priority"] = a->priority;
    return answer(ctx, "POST", "/api/v1/packages", &body,
                  [](const Json& j) { std::cout << cell_text(j["PackageID"]) << std::endl; });
  });
  create->add_option("--name", a->name, "package name")->required();
  create->add_option("--version", a->version, "package version");
  create->add_option("--manufacturer", a->manufacturer, "manufacturer");
  create->add_option("--language", a->language, "language");
  create->add_option("--description", a->description, "free text");
  create->add_option("--source", a->source, "source directory (on the site server)");
  create->add_option("--priority", a->priority, "1 high, 2 normal, 3 low")->check(CLI::Range(1, 3));
  verb(pkg, ctx, "list", "List packages", [&ctx] {
    return answer(ctx, "GET", "/api/v1/packages", nullptr, [](const Json& j) {
      print_table(rows_of(j), {"PackageID", "Name", "Version", "Manufacturer", "SourceVersion", "PackageSize",
                               "NumOfPrograms"});
    });
  });
  auto* show = verb(pkg, ctx, "show", "Show a package", [&ctx, a] {
    return answer(ctx, "GET", "/api/v1/packages/" + segment(a->id), nullptr, [](const Json& j) { print_record(j); });
  });
  show->add_option("package_id", a->id, "PackageID")->required();
  auto* del = verb(pkg, ctx, "delete", "Delete a package with its programs and status", [&ctx, a] {
    return answer(ctx, "DELETE", "/api/v1/packages/" + segment(a->id), nullptr,
                  [a](const Json&) { std::cout << "deleted package " << a->id << std::endl; });
  });
  del->add_option("package_id", a->id, "PackageID")->required();
  auto* update = verb(pkg, ctx, "update", "Take the package's source again: a new SourceVersion for every DP",
                      [&ctx, a] {
                        Json body = Json::object();
                        if (!a->source.empty()) {
                          std::error_code ec;
                          auto absolute = std::filesystem::absolute(a->source, ec);
                          body["source"] = ec ? a->source : absolute.lexically_normal().string();
                        }
                        return answer(ctx, "POST", "/api/v1/packages/" + segment(a->id) + "/refresh", &body,
                                      [](const Json& j) {
                                        std::cout << cell_text(j["PackageID"]) << " is at source version "
                                                  << cell_text(j["SourceVersion"]) << std::endl;
                                      });
                      });
  update->add_option("package_id", a->id, "PackageID")->required();
  update->add_option("--source", a->source, "the new source directory (default: the package's own)");
}

void add_program_commands(CLI::App& app, CliContext& ctx) {
  auto* program = app.add_subcommand("program", "Programs of a package");
  program->require_subcommand(1);
  struct Args {
    std::string package_id, name, command_line, working_directory, comment;
  };
  auto a = std::make_shared<Args>();
  auto* create = verb(program, ctx, "create", "Create a program", [&ctx, a] {
    Json body = {{"name", a->name}, {"command_line", a->command_line}};
    set_if(body, "working_directory", a->working_directory);
    set_if(body, "comment", a->comment);
    return answer(ctx, "POST", "/api/v1/packages/" + segment(a->package_id) + "/programs", &body, [](const Json& j) {
      std::cout << "created program " << cell_text(j["ProgramName"]) << " in " << cell_text(j["PackageID"])
                << std::endl;
    });
  });
  create->add_option("package_id", a->package_id, "PackageID")->required();
  create->add_option("--name", a->name, "program name")->required();
  create->add_option("--command-line", a->command_line, "the command that installs the package")->required();
  create->add_option("--working-directory", a->working_directory, "directory to run it in");
  create->add_option("--comment", a->comment, "free text");
  auto* list = verb(program, ctx, "list", "List a package's programs", [&ctx, a] {
    return answer(ctx, "GET", "/api/v1/packages/" + segment(a->package_id) + "/programs", nullptr,
                  [](const Json& j) { print_table(rows_of(j), {"PackageID", "ProgramName", "CommandLine"}); });
  });
  list->add_option("package_id", a->package_id, "PackageID")->required();
  auto* del = verb(program, ctx, "delete", "Delete a program", [&ctx, a] {
    return answer(ctx, "DELETE", "/api/v1/packages/" + segment(a->package_id) + "/programs/" + segment(a->name),
                  nullptr, [a](const Json&) { std::cout << "deleted program " << a->name << std::endl; });
  });
  del->add_option("package_id", a->package_id, "PackageID")->required();
  del->add_option("name", a->name, "program name")->required();
}

void add_advertisement_commands(CLI::App& app, CliContext& ctx) {
  auto* ad = app.add_subcommand("advertisement", "Advertisements");
  ad->require_subcommand(1);
  struct Args {
    std::string package_id, program, collection, present_time, name, offer_type, site;
  };
  auto a = std::make_shared<Args>();
  auto* create = verb(ad, ctx, "create", "Advertise a program to a collection; prints the AdvertisementID", [&ctx, a] {
    Json body = {{"package_id", a->package_id}, {"program", a->program}, {"collection", a->collection}};
    set_if(body, "present_time", a->present_time);
    set_if(body, "name", a->name);
    set_if(body, "offer_type", a->offer_type);
    return answer(ctx, "POST", "/api/v1/advertisements", &body,
                  [](const Json& j) { std::cout << cell_text(j["AdvertisementID"]) << std::endl; });
  });
  create->add_option("package_id", a->package_id, "PackageID")->required();
  create->add_option("--program", a->program, "program name")->required();
  create->add_option("--collection", a->collection, "collection id, e.g. SMS00001")->required();
  create->add_option("--present-time", a->present_time, "when it is offered (ISO-8601 or DMTF; default now)");
  create->add_option("--name", a->name, "advertisement name");
  create->add_option("--offer-type", a->offer_type, "required or available (default available)")
      ->check(CLI::IsMember({"required", "available"}));
  auto* list = verb(ad, ctx, "list", "List advertisements (with --site: as that site's clients see them)", [&ctx, a] {
    const std::string target = "/api/v1/advertisements" + (a->site.empty() ? "" : "?site=" + segment(a->site));
    std::vector<std::string> columns{"AdvertisementID", "AdvertisementName", "PackageID", "ProgramName",
                                     "CollectionID", "PresentTime"};
    if (!a->site.empty()) columns.push_back("Offered");
    return answer(ctx, "GET", target, nullptr, [columns](const Json& j) { print_table(rows_of(j), columns); });
  });
  list->add_option("--site", a->site, "site code");
}

void add_token_commands(CLI::App& app, CliContext& ctx) {
  auto* token = app.add_subcommand("token", "API tokens");
  token->require_subcommand(1);
  struct Args {
    std::string role, description, expires_in, expires, revoke_id;
    std::vector<std::string> sites;
  };
  auto a = std::make_shared<Args>();
  auto* create = verb(token, ctx, "create", "Issue a token; prints it (it is shown only once)", [&ctx, a] {
    Json body = {{"role", a->role}};
    if (!a->sites.empty()) body["sites"] = a->sites;
    set_if(body, "description", a->description);
    set_if(body, "expires_in", a->expires_in);
    set_if(body, "expires", a->expires);
    return answer(ctx, "POST", "/api/v1/tokens", &body, [](const Json& j) { std::cout << cell_text(j["token"]) << std::endl; });
  });
  // The roles a token can be created with (design.md section 7; `dp` tokens come from `dp add`).
  create->add_option("--role", a->role, "full-admin, package-admin or read-only")
      ->required()
      ->check(CLI::IsMember({"full-admin", "package-admin", "read-only"}, CLI::ignore_case));
  create->add_option("--site", a->sites, "limit the token to this site (repeat for several)");
  create->add_option("--description", a->description, "what the token is for");
  create->add_option("--expires-in", a->expires_in, "lifetime: a number and s, m, h or d (e.g. 30d, 12h, 90m)");
  create->add_option("--expires", a->expires, "expiry instant, ISO-8601 (e.g. 2027-01-31T00:00:00Z)");
  verb(token, ctx, "list", "List tokens (never their secret)", [&ctx] {
    return answer(ctx, "GET", "/api/v1/tokens", nullptr, [](const Json& j) { print_table(rows_of(j)); });
  });
  auto* revoke = verb(token, ctx, "revoke", "Revoke a token by its id (as token list shows it)", [&ctx, a] {
    return answer(ctx, "DELETE", "/api/v1/tokens/" + segment(a->revoke_id), nullptr, [](const Json& j) {
      std::cout << "revoked token " << cell_text(j["id"]) << std::endl;
    });
  });
  revoke->add_option("id", a->revoke_id, "the token's id (12 hex digits)")->required();
}

}  // namespace

void add_admin_commands(CLI::App& app, CliContext& ctx) {
  add_site_commands(app, ctx);
  add_dp_commands(app, ctx);
  add_group_commands(app, ctx);
  add_package_commands(app, ctx);
  add_program_commands(app, ctx);
  add_advertisement_commands(app, ctx);
  add_token_commands(app, ctx);
}

}  // namespace pkgcast::cli
