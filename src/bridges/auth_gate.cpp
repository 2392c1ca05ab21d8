#include "src/bridges/auth_gate.hpp"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include "actors/errc.hpp"
#include "src/auth/cert_subject.hpp"

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

std::string recorded_by(const auth::verdict& v, const std::string& typed) {
  return v.who ? v.who->name : typed;
}

} // namespace cerebelum::api
