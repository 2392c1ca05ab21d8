// The token table of the event store (schema version 4; its cert_subject
// column version 5) and the workflow owners (version 5, their replacements
// version 6), run against every backend.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/eventstore/backends.hpp"
#include "tests/eventstore/helpers.hpp"

using namespace cerebelum::eventstore;
using namespace cerebelum::eventstore::testing;

#define BACKENDS sqlite_tag, pg_tag

namespace {

token_row make_token(const std::string& id, std::int64_t created_at_ms) {
  token_row row;
  row.id = id;
  row.name = "ci-" + id;
  row.role = "worker";
  row.hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$" + id;
  row.created_at_ms = created_at_ms;
  return row;
}

void check_same(const token_row& got, const token_row& want) {
  CHECK(got.id == want.id);
  CHECK(got.name == want.name);
  CHECK(got.role == want.role);
  CHECK(got.queues == want.queues);
  CHECK(got.workflows == want.workflows);
  CHECK(got.hash == want.hash);
  CHECK(got.created_at_ms == want.created_at_ms);
  CHECK(got.expires_at_ms == want.expires_at_ms);
  CHECK(got.revoked_at_ms == want.revoked_at_ms);
  CHECK(got.last_used_ms == want.last_used_ms);
  CHECK(got.cert_subject == want.cert_subject);
}

/// A principal bound to client certificates of `subject` (no secret).
token_row make_cert_principal(const std::string& id, const std::string& subject,
                              std::int64_t created_at_ms) {
  auto row = make_token(id, created_at_ms);
  row.hash.clear();
  row.cert_subject = subject;
  return row;
}

std::vector<std::string> ids_of(const std::vector<token_row>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows)
    out.push_back(r.id);
  return out;
}

token_row require_token(event_store& store, const std::string& id) {
  auto row = require_ok(store.get_token(id));
  REQUIRE(row.has_value());
  return *row;
}

} // namespace

TEMPLATE_TEST_CASE("a token is read back with every field",
                   "[conformance][tokens]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto tok = make_token("tk_1", 100);
  tok.queues = {"billing", "a,b", "say \"hi\"", "back\\slash"};
  tok.workflows = {"order", "x, \"y\"", "line\nbreak"};
  tok.expires_at_ms = 9000;
  tok.revoked_at_ms = 700;
  tok.last_used_ms = 650;
  require_ok(store->put_token(tok));
  check_same(require_token(*store, "tk_1"), tok);
  CHECK_FALSE(require_ok(store->get_token("tk_2")).has_value());
  // Empty lists (every queue, every workflow) stay empty.
  auto open = make_token("tk_2", 200);
  require_ok(store->put_token(open));
  check_same(require_token(*store, "tk_2"), open);
}

TEMPLATE_TEST_CASE("a token whose id exists is refused as a conflict and the "
                   "first one stays",
                   "[conformance][tokens]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto first = make_token("tk", 100);
  require_ok(store->put_token(first));
  auto second = make_token("tk", 200);
  second.role = "admin";
  auto res = store->put_token(second);
  REQUIRE_FALSE(res.ok());
  CHECK(res.err().code == errc::conflict);
  CHECK_THAT(res.err().message, Catch::Contains("'tk'"));
  check_same(require_token(*store, "tk"), first);
  CHECK(require_ok(store->list_tokens()).size() == 1);
}

TEMPLATE_TEST_CASE("a principal bound to a certificate subject is read back "
                   "and listed with its subject, and revoked like a token",
                   "[conformance][tokens]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto cert = make_cert_principal("pc_1", "CN=ci-runner,O=Example \\, Inc.",
                                  100);
  cert.role = "reader";
  require_ok(store->put_token(cert));
  require_ok(store->put_token(make_token("tk", 200)));
  check_same(require_token(*store, "pc_1"), cert);
  CHECK(require_token(*store, "tk").cert_subject.empty());
  auto rows = require_ok(store->list_tokens());
  REQUIRE(rows.size() == 2);
  check_same(rows[0], cert);
  CHECK(require_ok(store->revoke_token("pc_1", 300)));
  CHECK(require_token(*store, "pc_1").revoked_at_ms == 300);
}

TEMPLATE_TEST_CASE("a token with both a hash and a certificate subject is "
                   "refused",
                   "[conformance][tokens]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  auto both = make_token("tk", 1);
  both.cert_subject = "CN=x";
  CHECK(store->put_token(both).err().code == errc::invalid_argument);
  CHECK(require_ok(store->list_tokens()).empty());
}

TEMPLATE_TEST_CASE("a token without an id or a hash is refused",
                   "[conformance][tokens]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  CHECK(store->put_token(make_token("", 1)).err().code
        == errc::invalid_argument);
  auto no_hash = make_token("tk", 1);
  no_hash.hash.clear();
  CHECK(store->put_token(no_hash).err().code == errc::invalid_argument);
  CHECK(require_ok(store->list_tokens()).empty());
}

TEMPLATE_TEST_CASE("tokens are listed by creation time then id, revoked and "
                   "expired ones too",
                   "[conformance][tokens]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  require_ok(store->put_token(make_token("a", 300)));
  require_ok(store->put_token(make_token("z", 100)));
  auto expired = make_token("b", 100);
  expired.expires_at_ms = 150;
  require_ok(store->put_token(expired));
  require_ok(store->put_token(make_token("c", 200)));
  REQUIRE(require_ok(store->revoke_token("c", 250)));
  auto rows = require_ok(store->list_tokens());
  CHECK(ids_of(rows) == std::vector<std::string>{"b", "z", "c", "a"});
  CHECK(rows[0].expires_at_ms == 150);
  CHECK(rows[2].revoked_at_ms == 250);
}

TEMPLATE_TEST_CASE("a revocation is recorded once and an unknown id is "
                   "reported",
                   "[conformance][tokens]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  require_ok(store->put_token(make_token("tk", 100)));
  CHECK(require_ok(store->revoke_token("tk", 500)));
  CHECK(require_token(*store, "tk").revoked_at_ms == 500);
  // Revoking again says the token exists and keeps the first time.
  CHECK(require_ok(store->revoke_token("tk", 900)));
  CHECK(require_token(*store, "tk").revoked_at_ms == 500);
  CHECK_FALSE(require_ok(store->revoke_token("nobody", 500)));
  CHECK_FALSE(require_ok(store->get_token("nobody")).has_value());
}

TEMPLATE_TEST_CASE("a touch only moves the last use forward",
                   "[conformance][tokens]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  require_ok(store->put_token(make_token("tk", 100)));
  CHECK(require_token(*store, "tk").last_used_ms == 0);
  require_ok(store->touch_token("tk", 1000));
  CHECK(require_token(*store, "tk").last_used_ms == 1000);
  require_ok(store->touch_token("tk", 400));
  CHECK(require_token(*store, "tk").last_used_ms == 1000);
  require_ok(store->touch_token("tk", 1000));
  CHECK(require_token(*store, "tk").last_used_ms == 1000);
  require_ok(store->touch_token("tk", 2500));
  CHECK(require_token(*store, "tk").last_used_ms == 2500);
  // An unknown id is no error: the caller checked the token a moment ago.
  require_ok(store->touch_token("nobody", 3000));
  CHECK_FALSE(require_ok(store->get_token("nobody")).has_value());
}

TEMPLATE_TEST_CASE("a schema version 3 store is migrated in place at open "
                   "and then keeps tokens",
                   "[conformance][tokens]", BACKENDS) {
  auto be = TestType::make();
  {
    auto store = require_ok(be->open());
    auto req = make_append("old", 0, 3);
    req.definition_inserts.push_back({"wf", 1, "{}", "wf.yaml", 1});
    require_ok(store->append(req));
  }
  be->make_old(3);
  auto store = require_ok(be->open());
  CHECK(store->schema_version() == current_schema_version);
  CHECK(read_all(*store, "old").size() == 3);
  CHECK(require_ok(store->get_definition("wf", 1)).has_value());
  CHECK(require_ok(store->list_tokens()).empty());
  auto tok = make_token("tk", 100);
  tok.queues = {"q1", "q2"};
  require_ok(store->put_token(tok));
  // Reopening the migrated store keeps its tokens.
  store.reset();
  auto again = require_ok(be->open());
  CHECK(again->schema_version() == current_schema_version);
  check_same(require_token(*again, "tk"), tok);
}

TEMPLATE_TEST_CASE("a workflow name is claimed once: the first owner stays",
                   "[conformance][owners]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  CHECK(require_ok(store->claim_workflow("order", "token 'a' (1)", 100))
        == "token 'a' (1)");
  CHECK(require_ok(store->claim_workflow("order", "token 'b' (2)", 200))
        == "token 'a' (1)");
  CHECK(require_ok(store->claim_workflow("refund", "token 'b' (2)", 300))
        == "token 'b' (2)");
  CHECK_FALSE(store->claim_workflow("", "token 'b' (2)", 300).ok());
  CHECK_FALSE(store->claim_workflow("x", "", 300).ok());
  // Kept across a reopen.
  store.reset();
  auto again = require_ok(be->open());
  CHECK(require_ok(again->claim_workflow("order", "token 'b' (2)", 400))
        == "token 'a' (1)");
}

TEMPLATE_TEST_CASE("a schema version 4 store is migrated in place at open, "
                   "keeps its tokens and then keeps certificate subjects and "
                   "workflow owners",
                   "[conformance][tokens]", BACKENDS) {
  auto be = TestType::make();
  auto tok = make_token("tk", 100);
  tok.workflows = {"order"};
  {
    auto store = require_ok(be->open());
    require_ok(store->append(make_append("old", 0, 2)));
    require_ok(store->put_token(tok));
  }
  be->make_old(4);
  auto store = require_ok(be->open());
  CHECK(store->schema_version() == current_schema_version);
  CHECK(read_all(*store, "old").size() == 2);
  check_same(require_token(*store, "tk"), tok);
  auto cert = make_cert_principal("pc", "CN=ci-runner,O=Example", 200);
  require_ok(store->put_token(cert));
  CHECK(require_ok(store->claim_workflow("order", "token 'a'", 100))
        == "token 'a'");
  // Reopening the migrated store keeps them.
  store.reset();
  auto again = require_ok(be->open());
  CHECK(again->schema_version() == current_schema_version);
  check_same(require_token(*again, "tk"), tok);
  check_same(require_token(*again, "pc"), cert);
  CHECK(require_ok(again->claim_workflow("order", "token 'b'", 200))
        == "token 'a'");
}

TEMPLATE_TEST_CASE("replacing a workflow name's owner records the owner it "
                   "had, who replaced it and when",
                   "[conformance][owners]", BACKENDS) {
  auto be = TestType::make();
  auto store = require_ok(be->open());
  CHECK_FALSE(require_ok(store->get_workflow_owner("order")).has_value());
  require_ok(store->claim_workflow("order", "token 'a'", 100));
  auto claimed = require_ok(store->get_workflow_owner("order"));
  REQUIRE(claimed.has_value());
  CHECK(claimed->owner == "token 'a'");
  CHECK(claimed->claimed_at_ms == 100);
  CHECK(claimed->previous_owner.empty());
  CHECK(claimed->replaced_by.empty());
  CHECK(claimed->replaced_at_ms == 0);
  auto row = require_ok(
    store->replace_workflow_owner("order", "token 'ops'", "token 'ops'", 200));
  CHECK(row.name == "order");
  CHECK(row.owner == "token 'ops'");
  CHECK(row.claimed_at_ms == 100);
  CHECK(row.previous_owner == "token 'a'");
  CHECK(row.replaced_by == "token 'ops'");
  CHECK(row.replaced_at_ms == 200);
  // A claim does not take it back.
  CHECK(require_ok(store->claim_workflow("order", "token 'a'", 300))
        == "token 'ops'");
  // A second replacement keeps only the last one.
  row = require_ok(
    store->replace_workflow_owner("order", files_owner, files_owner, 400));
  CHECK(row.previous_owner == "token 'ops'");
  CHECK(row.replaced_by == std::string{files_owner});
  // A name no one claimed: the replacement claims it.
  row = require_ok(
    store->replace_workflow_owner("refund", "token 'b'", "token 'ops'", 500));
  CHECK(row.owner == "token 'b'");
  CHECK(row.claimed_at_ms == 500);
  CHECK(row.previous_owner.empty());
  CHECK(row.replaced_by == "token 'ops'");
  CHECK_FALSE(store->replace_workflow_owner("", "token 'b'", "x", 1).ok());
  CHECK_FALSE(store->replace_workflow_owner("x", "", "x", 1).ok());
  CHECK_FALSE(store->replace_workflow_owner("x", "token 'b'", "", 1).ok());
  CHECK_FALSE(require_ok(store->get_workflow_owner("x")).has_value());
  // Kept across a reopen.
  store.reset();
  auto again = require_ok(be->open());
  auto kept = require_ok(again->get_workflow_owner("order"));
  REQUIRE(kept.has_value());
  CHECK(kept->owner == std::string{files_owner});
  CHECK(kept->previous_owner == "token 'ops'");
  CHECK(kept->replaced_by == std::string{files_owner});
  CHECK(kept->replaced_at_ms == 400);
}

TEMPLATE_TEST_CASE("a schema version 5 store is migrated in place at open, "
                   "keeps its workflow owners and then records replacements",
                   "[conformance][owners]", BACKENDS) {
  auto be = TestType::make();
  {
    auto store = require_ok(be->open());
    require_ok(store->append(make_append("old", 0, 2)));
    require_ok(store->claim_workflow("order", "token 'a'", 100));
  }
  be->make_old(5);
  auto store = require_ok(be->open());
  CHECK(store->schema_version() == current_schema_version);
  CHECK(read_all(*store, "old").size() == 2);
  auto old = require_ok(store->get_workflow_owner("order"));
  REQUIRE(old.has_value());
  CHECK(old->owner == "token 'a'");
  CHECK(old->claimed_at_ms == 100);
  CHECK(old->previous_owner.empty());
  CHECK(old->replaced_by.empty());
  CHECK(old->replaced_at_ms == 0);
  require_ok(
    store->replace_workflow_owner("order", "token 'b'", "token 'ops'", 200));
  store.reset();
  auto again = require_ok(be->open());
  CHECK(again->schema_version() == current_schema_version);
  auto row = require_ok(again->get_workflow_owner("order"));
  REQUIRE(row.has_value());
  CHECK(row->owner == "token 'b'");
  CHECK(row->previous_owner == "token 'a'");
  CHECK(row->replaced_by == "token 'ops'");
  CHECK(row->replaced_at_ms == 200);
}
