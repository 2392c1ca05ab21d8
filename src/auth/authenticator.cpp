#include "src/auth/authenticator.hpp"

#include <algorithm>
#include <cctype>

#include "eventstore/event_store.hpp"

namespace cerebelum::auth {

namespace {

using outcome = verdict::outcome;

verdict refuse(outcome o, std::string message) {
  return verdict{o, std::move(message), std::nullopt};
}

bool contains(const std::vector<std::string>& xs, std::string_view x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

/// Whether `who`'s scopes cover `scope`.
std::optional<std::string> out_of_scope(const principal& who,
                                        const request_scope& scope) {
  if (!scope.workflow.empty() && !who.workflows.empty()
      && !contains(who.workflows, scope.workflow))
    return "token '" + who.name + "' may not start workflow '"
           + std::string{scope.workflow} + "'";
  if (!who.queues.empty())
    for (const auto& q : scope.queues)
      if (!contains(who.queues, q))
        return "token '" + who.name + "' may not serve queue '" + q + "'";
  return std::nullopt;
}

/// Why `row` cannot be used at `now`, or nothing.
std::optional<std::string> unusable(const eventstore::token_row& row,
                                    std::int64_t now) {
  if (row.revoked_at_ms != 0) return "the token was revoked";
  if (row.expires_at_ms != 0 && row.expires_at_ms <= now)
    return "the token expired";
  if (!parse_role(row.role)) return "the token has an unknown role";
  return std::nullopt;
}

} // namespace

std::string_view bearer_token(std::string_view authorization) noexcept {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size()) return {};
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i])
      return {};
  auto rest = authorization.substr(scheme.size());
  while (!rest.empty() && rest.front() == ' ')
    rest.remove_prefix(1);
  return rest;
}

authenticator::authenticator(store_fn store, clock_fn now_ms)
  : store_(std::move(store)), now_ms_(std::move(now_ms)) {
  // nop
}

std::int64_t authenticator::now() const {
  return now_ms_ ? now_ms_() : wall_clock_ms();
}

verdict authenticator::check(std::string_view surface, std::string_view name,
                             std::string_view credentials,
                             const request_scope& scope) {
  return check(surface, name, presented{credentials, {}}, scope);
}

verdict authenticator::check(std::string_view credentials, permission p,
                             const request_scope& scope) {
  return check(presented{credentials, {}}, p, scope);
}

verdict authenticator::check(std::string_view surface, std::string_view name,
                             const presented& creds,
                             const request_scope& scope) {
  auto p = needed(surface, name);
  if (!p)
    return refuse(outcome::forbidden,
                  std::string{name} + " declares no permission: refused");
  return check(creds, *p, scope);
}

verdict authenticator::check(const presented& creds, permission p,
                             const request_scope& scope) {
  if (p == permission::open) return verdict{};
  auto at = now();
  auto v = creds.token.empty() && !creds.cert_subject.empty()
             ? authenticate_subject(creds.cert_subject, at)
             : authenticate(creds.token, at);
  if (!v.ok()) return v;
  const auto& who = *v.who;
  if (!allows(who.r, p))
    return refuse(outcome::forbidden,
                  "token '" + who.name + "' (role "
                    + std::string{to_string(who.r)} + ") may not "
                    + std::string{to_string(p)} + " (docs/security.md)");
  if (auto why = out_of_scope(who, scope))
    return refuse(outcome::forbidden, *why);
  return v;
}

void authenticator::forget(std::string_view token_id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto of_token = [token_id](const auto& kv) {
    return kv.second.who.token_id == token_id;
  };
  std::erase_if(known_, of_token);
  std::erase_if(known_subjects_, of_token);
}

authenticator::recalled authenticator::recall(cache& c, const std::string& key,
                                              std::int64_t now,
                                              principal& who) {
  bool touch = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = c.find(key);
    if (i == c.end()) return recalled::none;
    auto& e = i->second;
    if (e.expires_at_ms != 0 && e.expires_at_ms <= now) {
      c.erase(i);
      return recalled::expired;
    }
    if (now - e.checked_at_ms
        >= static_cast<std::int64_t>(recheck_interval.count()))
      return recalled::none;
    touch = now - e.touched_at_ms
            >= static_cast<std::int64_t>(touch_interval.count());
    if (touch) e.touched_at_ms = now;
    who = e.who;
  }
  if (auto* store = store_(); touch && store)
    (void)store->touch_token(who.token_id, now);
  return recalled::fresh;
}

verdict authenticator::remember(cache& c, const std::string& key,
                                const eventstore::token_row& r,
                                eventstore::event_store& store,
                                std::int64_t now) {
  principal who{r.name, *parse_role(r.role), r.id, r.queues, r.workflows};
  bool touch = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (c.size() > 100'000) c.clear();
    auto& e = c[key];
    e.who = who;
    e.expires_at_ms = r.expires_at_ms;
    e.checked_at_ms = now;
    touch = now - e.touched_at_ms
            >= static_cast<std::int64_t>(touch_interval.count());
    if (touch) e.touched_at_ms = now;
  }
  if (touch) (void)store.touch_token(r.id, now);
  return verdict{outcome::allowed, {}, std::move(who)};
}

verdict authenticator::authenticate_subject(std::string_view subject,
                                            std::int64_t now) {
  std::string key{subject};
  principal cached;
  // An expired binding is looked up again: another may be live.
  if (recall(known_subjects_, key, now, cached) == recalled::fresh)
    return verdict{outcome::allowed, {}, std::move(cached)};
  auto* store = store_();
  if (!store)
    return refuse(outcome::unauthenticated,
                  "the node's store is not open yet: principals cannot be "
                  "checked; retry");
  // A few rows (tokens are made by hand): a scan, as often as a subject
  // that maps to no principal is presented.
  auto rows = store->list_tokens();
  if (!rows)
    return refuse(outcome::unauthenticated,
                  "principals cannot be checked now (the store answered: "
                    + rows.err().message + "); retry");
  const eventstore::token_row* bound = nullptr;
  int live = 0;
  for (const auto& r : *rows)
    if (r.cert_subject == subject && !unusable(r, now)) {
      bound = &r;
      ++live;
    }
  if (live != 1) {
    std::lock_guard<std::mutex> guard{mtx_};
    known_subjects_.erase(key);
  }
  if (live == 0)
    return refuse(outcome::unauthenticated,
                  "no token was sent and the client certificate's subject '"
                    + key
                    + "' is bound to no live principal (cerebelum token "
                      "create --cert-subject; docs/security.md)");
  if (live > 1)
    return refuse(outcome::unauthenticated,
                  std::to_string(live) + " live principals are bound to '" + key
                    + "': revoke all but one");
  return remember(known_subjects_, key, *bound, *store, now);
}

verdict authenticator::authenticate(std::string_view credentials,
                                    std::int64_t now) {
  if (credentials.empty())
    return refuse(outcome::unauthenticated,
                  "this node requires a token: send 'Authorization: Bearer "
                  "<token>' (CLI: --token or CEREBELUM_TOKEN)");
  auto parts = parse_token(credentials);
  if (!parts)
    return refuse(outcome::unauthenticated,
                  "the credentials are not a Cerebelum token (cbm_...)");
  auto key = sha256(credentials);
  principal cached;
  switch (recall(known_, key, now, cached)) {
    case recalled::fresh:
      return verdict{outcome::allowed, {}, std::move(cached)};
    case recalled::expired:
      return refuse(outcome::unauthenticated, "the token expired");
    case recalled::none: break;
  }
  auto* store = store_();
  if (!store)
    return refuse(outcome::unauthenticated,
                  "the node's store is not open yet: tokens cannot be "
                  "checked; retry");
  auto row = store->get_token(parts->id);
  if (!row)
    return refuse(outcome::unauthenticated,
                  "tokens cannot be checked now (the store answered: "
                    + row.err().message + "); retry");
  auto forget_key = [this, &key] {
    std::lock_guard<std::mutex> guard{mtx_};
    known_.erase(key);
  };
  if (!row->has_value()) {
    forget_key();
    return refuse(outcome::unauthenticated, "unknown token");
  }
  const auto& r = **row;
  if (auto why = unusable(r, now)) {
    forget_key();
    return refuse(outcome::unauthenticated, *why);
  }
  bool known_before = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    known_before = known_.contains(key);
    if (!known_before) {
      auto f = failed_.find(r.id);
      if (f != failed_.end() && now - f->second < 1'000)
        return refuse(outcome::unauthenticated, "unknown token");
    }
  }
  if (!known_before) {
    bool good = false;
    {
      std::lock_guard<std::mutex> guard{hash_mtx_};
      good = verify_secret(parts->secret, r.hash);
    }
    if (!good) {
      std::lock_guard<std::mutex> guard{mtx_};
      if (failed_.size() > 10'000) failed_.clear();
      failed_[r.id] = now;
      return refuse(outcome::unauthenticated, "unknown token");
    }
  }
  return remember(known_, key, r, *store, now);
}

} // namespace cerebelum::auth
