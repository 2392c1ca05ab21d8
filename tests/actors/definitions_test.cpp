// Which workflow definitions the engine context holds and when it releases
// them (docs/worker-protocol.md, "Definitions a worker holds").
#include <catch2/catch.hpp>

#include <algorithm>

#include "actors/engine_context.hpp"
#include "workflow/loader.hpp"

using namespace cerebelum;
using actors::engine_context;

namespace {

workflow::definition def(const std::string& name, const std::string& label) {
  auto r = workflow::load_yaml("name: " + name + "\nversion: \"" + label
                               + "\"\nsteps:\n  - {name: a, set: '1'}\n");
  REQUIRE(r.ok());
  return std::move(*r);
}

/// Versions of `name` the context holds, without marking any as needed
/// (`latest` and `find` would).
std::vector<std::uint64_t> versions(const engine_context& ctx,
                                    const std::string& name) {
  std::vector<std::uint64_t> out;
  for (auto& [n, v, source] : ctx.definitions())
    if (n == name) out.push_back(v);
  return out;
}

struct booted {
  engine_context ctx{nullptr, actors::engine_options{}, 1};
  booted() {
    ctx.note_resurrection_done(std::chrono::milliseconds{0});
  }
};

} // namespace

TEST_CASE("a worker's definition is released when the worker leaves and no "
          "execution needs it") {
  booted b;
  REQUIRE_FALSE(b.ctx.register_definitions("w", "", {def("flow", "1")}));
  CHECK(versions(b.ctx, "flow").size() == 1);
  b.ctx.unregister_definitions("w");
  CHECK(versions(b.ctx, "flow").empty());
  CHECK(b.ctx.latest("flow") == nullptr);
}

TEST_CASE("registering again replaces what a worker holds, and the latest "
          "remaining version is the one a start uses") {
  booted b;
  auto v0 = def("flow", "0");
  auto h0 = v0.version_hash;
  auto v1 = def("flow", "1");
  auto v2 = def("flow", "2");
  auto h1 = v1.version_hash;
  auto h2 = v2.version_hash;
  REQUIRE_FALSE(b.ctx.register_definitions("w", "", {std::move(v0)}));
  // Worker x (a second process of w's deployment) holds a copy of it.
  REQUIRE_FALSE(b.ctx.register_definitions("x", "", {def("flow", "0")}));
  REQUIRE_FALSE(b.ctx.register_definitions("w", "", {std::move(v1)}));
  REQUIRE_FALSE(b.ctx.register_definitions("w", "", {std::move(v2)}));
  auto held = versions(b.ctx, "flow");
  CHECK(std::count(held.begin(), held.end(), h1) == 0);
  CHECK(std::count(held.begin(), held.end(), h2) == 1);
  b.ctx.unregister_definitions("w");
  // The version x holds stays and is the latest again.
  CHECK(versions(b.ctx, "flow") == std::vector<std::uint64_t>{h0});
  REQUIRE(b.ctx.latest("flow"));
  CHECK(b.ctx.latest("flow")->version_hash == h0);
}

TEST_CASE("a version an execution started on stays after its worker "
          "registers another one and leaves") {
  booted b;
  REQUIRE_FALSE(b.ctx.register_definitions("w", "", {def("flow", "1")}));
  auto started = b.ctx.latest("flow"); // what a start does
  REQUIRE(started);
  REQUIRE_FALSE(b.ctx.register_definitions("w", "", {def("flow", "2")}));
  b.ctx.unregister_definitions("w");
  auto held = versions(b.ctx, "flow");
  CHECK(held == std::vector<std::uint64_t>{started->version_hash});
  CHECK(b.ctx.find("flow", started->version_hash) == started);
}

TEST_CASE("a version open at boot stays, and nothing is released before the "
          "resurrector is done") {
  engine_context ctx{nullptr, actors::engine_options{}, 1};
  auto open = def("flow", "1");
  auto h = open.version_hash;
  ctx.note_open_execution("flow", h);
  REQUIRE_FALSE(ctx.register_definitions("w", "", {std::move(open)}));
  REQUIRE_FALSE(ctx.register_definitions("x", "", {def("other", "1")}));
  ctx.unregister_definitions("w");
  ctx.unregister_definitions("x");
  // Booting: the resurrector may not have reported every open execution.
  CHECK(versions(ctx, "other").size() == 1);
  ctx.note_resurrection_done(std::chrono::milliseconds{0});
  CHECK(versions(ctx, "other").empty());
  CHECK(versions(ctx, "flow") == std::vector<std::uint64_t>{h});
}

TEST_CASE("two workers holding one version keep it until both leave") {
  booted b;
  auto d = def("flow", "1");
  auto h = d.version_hash;
  REQUIRE_FALSE(b.ctx.register_definitions("w1", "", {d}));
  REQUIRE_FALSE(b.ctx.register_definitions("w2", "", {std::move(d)}));
  b.ctx.unregister_definitions("w1");
  CHECK(versions(b.ctx, "flow") == std::vector<std::uint64_t>{h});
  b.ctx.unregister_definitions("w2");
  CHECK(versions(b.ctx, "flow").empty());
}

TEST_CASE("a worker may not replace a workflow of the node's files, and "
          "starts keep the operator's version") {
  booted b;
  auto file = def("order", "ops");
  auto h = file.version_hash;
  b.ctx.add_definition(std::move(file), "workflows/order.yaml");
  auto why = b.ctx.register_definitions("w", "", {def("order", "evil")});
  REQUIRE(why);
  CHECK(*why
        == "workflow 'order' is defined by the node's workflow files; a "
           "worker may not replace it (worker 'w' brings a different "
           "version)");
  CHECK(versions(b.ctx, "order") == std::vector<std::uint64_t>{h});
  REQUIRE(b.ctx.latest("order"));
  CHECK(b.ctx.latest("order")->version_hash == h);
  CHECK(b.ctx.owner("order") == std::string{});
}

TEST_CASE("a refused registration adds none of its definitions") {
  booted b;
  b.ctx.add_definition(def("order", "ops"), "workflows/order.yaml");
  CHECK(
    b.ctx.register_definitions("w", "", {def("mine", "1"), def("order", "2")}));
  CHECK(versions(b.ctx, "mine").empty());
  CHECK_FALSE(b.ctx.owner("mine"));
}

TEST_CASE("a workflow name belongs to the identity that registered it first, "
          "also after its worker leaves, and that identity deploys new "
          "versions under any worker id") {
  booted b;
  const std::string a = "token 'a' (1)";
  const std::string other = "token 'b' (2)";
  REQUIRE_FALSE(b.ctx.register_definitions("w1", a, {def("flow", "1")}));
  auto why = b.ctx.register_definitions("w2", other, {def("flow", "2")});
  REQUIRE(why);
  CHECK(why->find("defined by token 'a' (1)") != std::string::npos);
  auto v2 = def("flow", "2");
  auto h2 = v2.version_hash;
  REQUIRE_FALSE(b.ctx.register_definitions("w1", a, {std::move(v2)}));
  CHECK(b.ctx.latest("flow")->version_hash == h2);
  b.ctx.unregister_definitions("w1");
  CHECK(b.ctx.register_definitions("w2", other, {def("flow", "3")}));
  CHECK(b.ctx.owner("flow") == a);
  // The same identity restarted under a new worker id (a new process).
  REQUIRE_FALSE(b.ctx.register_definitions("w3", a, {def("flow", "3")}));
  CHECK(b.ctx.latest("flow")->version_hash == def("flow", "3").version_hash);
}

TEST_CASE("on a node without tokens a worker restarted under a new id "
          "registers its workflows again") {
  booted b;
  REQUIRE_FALSE(
    b.ctx.register_definitions("host-1-aa", "", {def("flow", "1")}));
  b.ctx.unregister_definitions("host-1-aa");
  // The version was released (no one held it); the new process brings it.
  CHECK_FALSE(b.ctx.register_definitions("host-2-bb", "", {def("flow", "1")}));
  CHECK_FALSE(b.ctx.register_definitions("host-2-bb", "", {def("flow", "2")}));
  CHECK(b.ctx.owner("flow") == std::string{engine_context::any_worker});
  // The node's files stay the operator's.
  b.ctx.add_definition(def("order", "ops"), "workflows/order.yaml");
  CHECK(b.ctx.register_definitions("host-2-bb", "", {def("order", "x")}));
}

TEST_CASE("another worker's copy of a loaded version is held but does not "
          "become the latest") {
  booted b;
  auto v1 = def("flow", "1");
  auto h1 = v1.version_hash;
  REQUIRE_FALSE(b.ctx.register_definitions("w1", "", {std::move(v1)}));
  // A second process of the deployment under its own id.
  REQUIRE_FALSE(b.ctx.register_definitions("w2", "", {def("flow", "1")}));
  CHECK(b.ctx.owner("flow") == std::string{engine_context::any_worker});
  // Rolling deploy: w1 brings version 2 while w2 still runs version 1 and
  // registers it again (a reconnect): w2 keeps it, starts stay on 2.
  auto v2 = def("flow", "2");
  auto h2 = v2.version_hash;
  REQUIRE_FALSE(b.ctx.register_definitions("w1", "", {std::move(v2)}));
  REQUIRE_FALSE(b.ctx.register_definitions("w2", "", {def("flow", "1")}));
  auto held = versions(b.ctx, "flow");
  CHECK(std::count(held.begin(), held.end(), h1) == 1);
  CHECK(b.ctx.latest("flow")->version_hash == h2);
}
