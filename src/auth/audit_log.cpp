#include <nlohmann/json.hpp>

#include "common/field_checks.h"
#include "devcycle/auth/audit.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"

namespace devcycle {

namespace {

constexpr const char* kColumns = "id, at, actor, action, target, client_address, detail";

AuditEntry from_row(const Row& r) {
  return {r[0].as_text(), r[1].as_int(),  r[2].as_text(), r[3].as_text(),
          r[4].as_text(), r[5].as_text(), r[6].as_text()};
}

void check_action(std::string_view field, std::string_view action, bool prefix_ok) {
  const bool ok = !action.empty() && action.size() <= 64 &&
                  action.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._") ==
                      std::string_view::npos &&
                  (prefix_ok || action.back() != '.');
  if (!ok) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(field) + ": must be 1-64 characters of a-z, 0-9, '.' and '_'");
  }
}

}  // namespace

std::vector<Migration> AuditLog::migrations() {
  return {{"audit", 1, "audit log",
           "CREATE TABLE audit_log ("
           " id TEXT PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
           " target TEXT NOT NULL, client_address TEXT NOT NULL, detail TEXT NOT NULL);"
           "CREATE INDEX audit_log_actor ON audit_log (actor, id);"
           "CREATE INDEX audit_log_action ON audit_log (action, id);"
           "CREATE INDEX audit_log_at ON audit_log (at)",
           ""}};
}

AuditLog::AuditLog(Database& db, std::shared_ptr<Clock> clock) : db_(db), clock_(std::move(clock)) {
  if (!clock_) throw Error(ErrorCode::kInvalidArgument, "AuditLog clock: must not be null");
  db_.migrate(migrations());
}

AuditEntry AuditLog::record(const NewAuditEntry& e) {
  internal::check_text("actor", e.actor, 128);
  check_action("action", e.action, false);
  internal::check_text("target", e.target, 256);
  internal::check_text("client_address", e.client_address, 128);
  if (e.detail.size() > 4096) {
    throw Error(ErrorCode::kInvalidArgument, "detail: larger than 4096 bytes");
  }
  const auto detail = nlohmann::json::parse(e.detail, nullptr, false);
  if (detail.is_discarded() || !detail.is_object()) {
    throw Error(ErrorCode::kInvalidArgument, "detail: must be a JSON object");
  }
  AuditEntry a{new_uuid_v7(), clock_->now(),    e.actor,      e.action,
               e.target,      e.client_address, detail.dump()};
  db_.write([&](Txn& t) {
    t.execute(
        "INSERT INTO audit_log (" + std::string(kColumns) + ") VALUES ($1, $2, $3, $4, $5, $6, $7)",
        {a.id, a.at, a.actor, a.action, a.target, a.client_address, a.detail});
  });
  return a;
}

AuditPage AuditLog::query(const AuditFilter& f) {
  if (f.limit < 1 || f.limit > 1000) {
    throw Error(ErrorCode::kInvalidArgument,
                "limit: " + std::to_string(f.limit) + " is not between 1 and 1000");
  }
  if (!f.page_token.empty() && !is_uuid(f.page_token)) {
    throw Error(ErrorCode::kInvalidArgument, "page_token: not a token from a previous page");
  }
  if (f.action) check_action("action", *f.action, true);
  std::string sql = "SELECT " + std::string(kColumns) + " FROM audit_log WHERE 1 = 1";
  std::vector<Value> params;
  const auto param = [&](Value v) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size());
  };
  if (!f.page_token.empty()) sql += " AND id < " + param(f.page_token);
  if (f.after) sql += " AND at >= " + param(*f.after);
  if (f.before) sql += " AND at < " + param(*f.before);
  if (f.actor) sql += " AND actor = " + param(*f.actor);
  if (f.action) {
    if (f.action->back() == '.') {
      // A prefix: "login." matches login.succeeded and login.failed.
      sql += " AND action >= " + param(*f.action) + " AND action < " +
             param(f.action->substr(0, f.action->size() - 1) + "/");
    } else {
      sql += " AND action = " + param(*f.action);
    }
  }
  sql += " ORDER BY id DESC LIMIT " + std::to_string(f.limit + 1);
  auto rows = db_.read([&](Txn& t) { return t.query(sql, params); });
  AuditPage page;
  for (const auto& r : rows) page.entries.push_back(from_row(r));
  if (static_cast<int>(page.entries.size()) > f.limit) {
    page.entries.pop_back();
    page.next_page_token = page.entries.back().id;
  }
  return page;
}

}  // namespace devcycle
