#include "src/bridges/auth_gate.hpp"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include <algorithm>

#include "actors/engine_api.hpp"
#include "actors/errc.hpp"
#include "eventstore/event_store.hpp"
#include "src/auth/cert_subject.hpp"
#include "workflow/safe_text.hpp"

namespace cerebelum::api {

caf::error refusal(const auth::verdict& v) {
  using outcome = auth::verdict::outcome;
  switch (v.result) {
    case outcome::allowed: return {};
    case outcome::unauthenticated:
      return actors::make_error(actors::errc::unauthenticated, v.message);
    case outcome::forbidden:
      return actors::make_error(actors::errc::permission_denied, v.message);
  }
  return actors::make_error(actors::errc::permission_denied, v.message);
}

auth::verdict check_call(const authenticator_ptr& auth,
                         grpc::ServerContextBase* ctx, std::string_view method,
                         const auth::request_scope& scope) {
  if (!auth) return {};
  std::string_view credentials;
  const auto& md = ctx->client_metadata();
  if (auto i = md.find("authorization"); i != md.end())
    credentials = auth::bearer_token(
      std::string_view{i->second.data(), i->second.size()});
  std::string subject;
  if (credentials.empty()) subject = client_subject(*ctx);
  return auth->check("grpc", method, auth::presented{credentials, subject},
                     scope);
}

std::string client_subject(const grpc::ServerContextBase& ctx) {
  auto peer = ctx.auth_context();
  // Only a listener with --tls-client-ca asks for client certificates, and
  // then it requires and verifies them against that CA.
  if (!peer || !peer->IsPeerAuthenticated()) return {};
  auto pem = peer->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return {};
  return auth::subject_of_pem(std::string_view{pem[0].data(), pem[0].size()});
}

actors::operator_id recorded_by(std::string_view principal,
                                const std::string& typed) {
  if (principal.empty()) return {typed};
  if (typed == principal) return {std::string{principal}};
  return {std::string{principal}, typed};
}

actors::operator_id recorded_by(const auth::verdict& v,
                                const std::string& typed) {
  return recorded_by(v.who ? std::string_view{v.who->name} : std::string_view{},
                     typed);
}

bool in_scope(std::span<const std::string> workflows,
              std::string_view workflow) noexcept {
  return workflows.empty()
         || std::find(workflows.begin(), workflows.end(), workflow)
              != workflows.end();
}

std::span<const std::string> scope_of(const auth::verdict& v) noexcept {
  if (!v.who) return {};
  return v.who->workflows;
}

std::string_view name_of(const auth::verdict& v) noexcept {
  if (!v.who) return {};
  return v.who->name;
}

namespace {

std::string joined(std::span<const std::string> xs) {
  std::string out;
  for (const auto& x : xs) {
    if (!out.empty()) out += ", ";
    out += x;
  }
  return out;
}

std::string scope_text(std::string_view name,
                       std::span<const std::string> workflows) {
  return "token '" + std::string{name} + "' is scoped to workflow"
         + (workflows.size() == 1 ? " " : "s ") + joined(workflows);
}

} // namespace

caf::error scope_refusal(std::string_view name,
                         std::span<const std::string> workflows,
                         std::string_view workflow, std::string_view what) {
  if (in_scope(workflows, workflow)) return {};
  return actors::make_error(actors::errc::permission_denied,
                            scope_text(name, workflows) + "; "
                              + std::string{what} + " is of workflow '"
                              + std::string{workflow} + "'");
}

caf::error view_scope_refusal(std::string_view name,
                              std::span<const std::string> workflows,
                              const actors::execution_view& view) {
  if (workflows.empty()) return {};
  return scope_refusal(name, workflows, view.workflow,
                       "execution '" + view.execution_id + "'");
}

caf::error execution_scope_refusal(actors::engine_api& engine,
                                   std::string_view name,
                                   std::span<const std::string> workflows,
                                   const std::string& id) {
  if (workflows.empty()) return {};
  auto view = engine.describe(id);
  if (!view) return std::move(view.error());
  return view_scope_refusal(name, workflows, *view);
}

caf::error dead_letter_scope_refusal(actors::engine_api& engine,
                                     std::string_view name,
                                     std::span<const std::string> workflows,
                                     std::int64_t id) {
  if (workflows.empty()) return {};
  auto* store = engine.token_store();
  if (store == nullptr)
    return actors::make_error(actors::errc::unavailable,
                              "the node's store is not open");
  auto row = store->get_dead_letter(id);
  if (!row)
    return actors::make_error(actors::errc::unavailable,
                              "cannot read dead letter " + std::to_string(id)
                                + ": " + eventstore::to_string(row.err()));
  if (!*row)
    return actors::make_error(actors::errc::not_found,
                              "no dead letter " + std::to_string(id));
  auto err = execution_scope_refusal(engine, name, workflows,
                                     (*row)->execution_id);
  if (actors::api_error_code(err) == actors::errc::permission_denied)
    return actors::make_error(actors::errc::permission_denied,
                              scope_text(name, workflows) + "; dead letter "
                                + std::to_string(id)
                                + " is of another workflow");
  return err;
}

caf::expected<std::optional<std::string>>
scoped_filter(std::string_view name, std::span<const std::string> workflows,
              std::optional<std::string> asked) {
  if (workflows.empty()) return asked;
  if (asked) {
    if (auto err = scope_refusal(name, workflows, *asked, "the list asked for"))
      return err;
    return asked;
  }
  if (workflows.size() == 1) return std::optional<std::string>{workflows[0]};
  return actors::make_error(actors::errc::invalid_argument,
                            scope_text(name, workflows)
                              + ": name one of them (workflow=)");
}

caf::expected<actors::workflow_owner_view>
transfer_workflow(const authenticator_ptr& auth, actors::engine_api& engine,
                  const auth::verdict& v, const std::string& name,
                  const std::string& to) {
  using actors::errc;
  if (!auth || !v.who)
    return actors::make_error(errc::not_transferable,
                              "this node runs without --auth token: its "
                              "workers are one identity and own no workflow "
                              "names of their own, so there is no one to "
                              "transfer '"
                                + workflow::printable(name) + "' to");
  auto* store = engine.token_store();
  if (!store)
    return actors::make_error(errc::unavailable,
                              "the node's store is not open yet");
  auto rows = store->list_tokens();
  if (!rows)
    return actors::make_error(errc::unavailable,
                              "the tokens could not be read: "
                                + eventstore::to_string(rows.err()));
  auto target = auth::find_transfer_target(*rows, to, auth::wall_clock_ms());
  if (!target.refusal.empty())
    return actors::make_error(errc::invalid_argument,
                              std::move(target.refusal));
  return engine.transfer_workflow(name, target.identity,
                                  auth::worker_identity(*v.who));
}

} // namespace cerebelum::api
