// Who owns a workflow name, with the store that records it
// (docs/security.md, "Workflow ownership"): the check before any record,
// an admin's replacement, the node's files taking a name, transfers.
#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>

#include "actors/engine_context.hpp"
#include "actors/errc.hpp"
#include "eventstore/sqlite_store.hpp"
#include "eventstore/store_decorator.hpp"
#include "tests/support/scratch.hpp"
#include "workflow/loader.hpp"

using namespace cerebelum;
using actors::engine_context;
namespace es = cerebelum::eventstore;

namespace {

const std::string alice = "token 'alice'";
const std::string bob = "token 'bob'";
const std::string admin = "token 'admin'";

workflow::definition def(const std::string& name, const std::string& label) {
  auto r = workflow::load_yaml("name: " + name + "\nversion: \"" + label
                               + "\"\nsteps:\n  - {name: a, set: '1'}\n");
  REQUIRE(r.ok());
  return std::move(*r);
}

std::shared_ptr<es::event_store> open_store(const test::temp_dir& dir) {
  es::sqlite_options opts;
  opts.data_dir = dir.path.string();
  auto store = es::open_sqlite_store(opts);
  REQUIRE(store);
  return std::move(*store);
}

/// One node's context on `store`.
struct node_ctx {
  engine_context ctx{nullptr, actors::engine_options{}, 1};
  explicit node_ctx(std::shared_ptr<es::event_store> store) {
    ctx.attach_store(std::move(store));
    ctx.note_resurrection_done(std::chrono::milliseconds{0});
  }
};

std::optional<es::workflow_owner_row> stored(es::event_store& store,
                                             const std::string& name) {
  auto row = store.get_workflow_owner(name);
  REQUIRE(row.ok());
  return *row;
}

/// Another node's worker claims `name` for `who` right after this node read
/// that no one owns it.
class racing_store : public es::store_decorator {
 public:
  racing_store(std::shared_ptr<es::event_store> inner, std::string name,
               std::string who)
    : store_decorator(std::move(inner)),
      name_(std::move(name)),
      who_(std::move(who)) {
    // nop
  }

  es::result<std::optional<es::workflow_owner_row>>
  get_workflow_owner(std::string_view name) override {
    auto row = store_decorator::get_workflow_owner(name);
    if (name == name_ && row.ok() && !*row)
      REQUIRE(inner().claim_workflow(name_, who_, 1).ok());
    return row;
  }

 private:
  std::string name_;
  std::string who_;
};

} // namespace

TEST_CASE("a refused registration records none of its names in the store") {
  test::temp_dir dir;
  auto store = open_store(dir);
  node_ctx n{store};
  REQUIRE_FALSE(n.ctx.register_definitions("w1", alice, {def("flow", "1")}));
  auto why = n.ctx.register_definitions("w2", bob,
                                        {def("mine", "1"), def("flow", "2")});
  REQUIRE(why);
  CHECK(why->find("defined by token 'alice'") != std::string::npos);
  CHECK_FALSE(stored(*store, "mine"));
  CHECK_FALSE(n.ctx.owner("mine"));
  // The name is still free for whoever defines it first.
  REQUIRE_FALSE(n.ctx.register_definitions("w2", bob, {def("mine", "1")}));
  CHECK(stored(*store, "mine")->owner == bob);
}

TEST_CASE("a worker token may not replace another identity's workflow, and "
          "the refusal says which role may") {
  test::temp_dir dir;
  auto store = open_store(dir);
  node_ctx n{store};
  REQUIRE_FALSE(n.ctx.register_definitions("w1", alice, {def("flow", "1")}));
  auto why = n.ctx.register_definitions("w2", bob, {def("flow", "2")});
  REQUIRE(why);
  CHECK(*why
        == "workflow 'flow' is defined by token 'alice'; a worker may not "
           "replace it (worker 'w2' brings a different version) (a token of "
           "role admin may)");
  CHECK(stored(*store, "flow")->owner == alice);
  CHECK(stored(*store, "flow")->replaced_at_ms == 0);
}

TEST_CASE("an admin's registration replaces another identity's workflow, "
          "becomes its owner and the store records the replacement") {
  test::temp_dir dir;
  auto store = open_store(dir);
  node_ctx n{store};
  REQUIRE_FALSE(n.ctx.register_definitions("w1", alice, {def("flow", "1")}));
  auto v2 = def("flow", "2");
  auto h2 = v2.version_hash;
  REQUIRE_FALSE(
    n.ctx.register_definitions("ops-1", admin, {std::move(v2)}, true));
  CHECK(n.ctx.owner("flow") == admin);
  CHECK(n.ctx.latest("flow")->version_hash == h2);
  auto row = stored(*store, "flow");
  REQUIRE(row);
  CHECK(row->owner == admin);
  CHECK(row->previous_owner == alice);
  CHECK(row->replaced_by == admin);
  CHECK(row->replaced_at_ms > 0);
  // The former owner now brings nothing new.
  CHECK(n.ctx.register_definitions("w1", alice, {def("flow", "3")}));
  // A name no one owned is claimed, not replaced.
  REQUIRE_FALSE(
    n.ctx.register_definitions("ops-1", admin, {def("fresh", "1")}, true));
  CHECK(stored(*store, "fresh")->replaced_at_ms == 0);
}

TEST_CASE("an admin's registration may not replace a workflow of the node's "
          "files") {
  test::temp_dir dir;
  auto store = open_store(dir);
  node_ctx n{store};
  n.ctx.add_definition(def("order", "ops"), "workflows/order.yaml");
  auto why = n.ctx.register_definitions("ops-1", admin, {def("order", "x")},
                                        true);
  REQUIRE(why);
  CHECK(why->find("is defined by the node's workflow files; a worker may not "
                  "replace it")
        != std::string::npos);
  CHECK(n.ctx.owner("order") == std::string{});
  CHECK_FALSE(stored(*store, "order"));
}

TEST_CASE("the node's workflow files taking a worker identity's name at boot "
          "are recorded as its replacement") {
  test::temp_dir dir;
  auto store = open_store(dir);
  {
    node_ctx before{store};
    REQUIRE_FALSE(
      before.ctx.register_definitions("w1", alice, {def("order", "1")}));
  }
  // The next boot loads the files before the store opens.
  engine_context ctx{nullptr, actors::engine_options{}, 1};
  ctx.add_definition(def("order", "ops"), "workflows/order.yaml");
  ctx.add_definition(def("other", "ops"), "workflows/other.yaml");
  ctx.attach_store(store);
  auto row = stored(*store, "order");
  REQUIRE(row);
  CHECK(row->owner == std::string{es::files_owner});
  CHECK(row->previous_owner == alice);
  CHECK(row->replaced_by == std::string{es::files_owner});
  CHECK(row->replaced_at_ms > 0);
  // A name no worker recorded stays unrecorded.
  CHECK_FALSE(stored(*store, "other"));
}

TEST_CASE("a name the node's files took stays theirs on a node without those "
          "files") {
  test::temp_dir dir;
  auto store = open_store(dir);
  {
    node_ctx first{store};
    REQUIRE_FALSE(
      first.ctx.register_definitions("w1", alice, {def("order", "1")}));
    first.ctx.add_definition(def("order", "ops"), "workflows/order.yaml");
    CHECK(stored(*store, "order")->previous_owner == alice);
  }
  node_ctx later{store};
  auto why = later.ctx.register_definitions("w1", alice, {def("order", "2")});
  REQUIRE(why);
  CHECK(why->find("defined by the node's workflow files") != std::string::npos);
}

TEST_CASE("a transfer moves a name to another identity, recorded, and that "
          "identity then deploys new versions") {
  test::temp_dir dir;
  auto store = open_store(dir);
  node_ctx n{store};
  REQUIRE_FALSE(n.ctx.register_definitions("w1", alice, {def("flow", "1")}));
  REQUIRE(n.ctx.register_definitions("w2", bob, {def("flow", "2")}));
  auto moved = n.ctx.transfer_owner("flow", bob, admin);
  REQUIRE(moved);
  CHECK(moved->owner == bob);
  REQUIRE(moved->stored);
  CHECK(moved->stored->previous_owner == alice);
  CHECK(moved->stored->replaced_by == admin);
  CHECK(stored(*store, "flow")->owner == bob);
  auto v2 = def("flow", "2");
  auto h2 = v2.version_hash;
  REQUIRE_FALSE(n.ctx.register_definitions("w2", bob, {std::move(v2)}));
  CHECK(n.ctx.latest("flow")->version_hash == h2);
  CHECK(n.ctx.register_definitions("w1", alice, {def("flow", "3")}));
  auto seen = n.ctx.owner_of("flow");
  REQUIRE(seen);
  CHECK(seen->owner == bob);
}

TEST_CASE("a transfer of a name of the node's files or of an unknown name is "
          "refused") {
  test::temp_dir dir;
  auto store = open_store(dir);
  node_ctx n{store};
  n.ctx.add_definition(def("order", "ops"), "workflows/order.yaml");
  auto files = n.ctx.transfer_owner("order", bob, admin);
  REQUIRE_FALSE(files);
  CHECK(actors::api_error_code(files.error())
        == actors::errc::not_transferable);
  CHECK(n.ctx.owner("order") == std::string{});
  CHECK_FALSE(stored(*store, "order"));
  auto unknown = n.ctx.transfer_owner("nobody", bob, admin);
  REQUIRE_FALSE(unknown);
  CHECK(actors::api_error_code(unknown.error())
        == actors::errc::unknown_workflow);
  CHECK_FALSE(stored(*store, "nobody"));
  auto shown = n.ctx.owner_of("order");
  REQUIRE(shown);
  CHECK(shown->owner == std::string{es::files_owner});
  CHECK_FALSE(shown->stored);
}

TEST_CASE("a transfer made on another node of the store holds at this node's "
          "next registration") {
  test::temp_dir dir;
  auto store = open_store(dir);
  node_ctx here{store};
  node_ctx there{store};
  REQUIRE_FALSE(here.ctx.register_definitions("w1", alice, {def("flow", "1")}));
  REQUIRE(there.ctx.register_definitions("w9", alice, {def("flow", "1")})
          == std::nullopt);
  REQUIRE(there.ctx.transfer_owner("flow", bob, admin));
  // `here` still remembers alice, but reads the store before its check.
  REQUIRE_FALSE(here.ctx.register_definitions("w2", bob, {def("flow", "2")}));
  CHECK(here.ctx.owner("flow") == bob);
  CHECK(here.ctx.register_definitions("w1", alice, {def("flow", "3")}));
}

TEST_CASE("a claim another node records between this node's read and its "
          "own claim refuses the registration") {
  test::temp_dir dir;
  auto inner = open_store(dir);
  auto racing = std::make_shared<racing_store>(inner, "flow", bob);
  node_ctx n{racing};
  auto why = n.ctx.register_definitions("w1", alice, {def("flow", "1")});
  REQUIRE(why);
  CHECK(why->find("defined by token 'bob'") != std::string::npos);
  CHECK(n.ctx.owner("flow") == bob);
  CHECK(stored(*inner, "flow")->owner == bob);
  CHECK(n.ctx.definitions().empty());
}
