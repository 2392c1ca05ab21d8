#include "src/bridges/auth_gate.hpp"

#include <grpcpp/server_context.h>

#include "actors/errc.hpp"

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
  return auth->check("grpc", method, credentials, scope);
}

std::string recorded_by(const auth::verdict& v, const std::string& typed) {
  return v.who ? v.who->name : typed;
}

} // namespace cerebelum::api
