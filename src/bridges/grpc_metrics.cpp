#include "src/bridges/grpc_metrics.hpp"

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "actors/engine_api.hpp"
#include "actors/metrics.hpp"

namespace cerebelum::api {

namespace {

namespace gx = grpc::experimental;

/// "OK", "NOT_FOUND", ... as gRPC names the codes.
std::string code_name(grpc::StatusCode code) {
  static const std::array<const char*, 17> names{"OK",
                                                 "CANCELLED",
                                                 "UNKNOWN",
                                                 "INVALID_ARGUMENT",
                                                 "DEADLINE_EXCEEDED",
                                                 "NOT_FOUND",
                                                 "ALREADY_EXISTS",
                                                 "PERMISSION_DENIED",
                                                 "RESOURCE_EXHAUSTED",
                                                 "FAILED_PRECONDITION",
                                                 "ABORTED",
                                                 "OUT_OF_RANGE",
                                                 "UNIMPLEMENTED",
                                                 "INTERNAL",
                                                 "UNAVAILABLE",
                                                 "DATA_LOSS",
                                                 "UNAUTHENTICATED"};
  auto i = static_cast<std::size_t>(code);
  return i < names.size() ? names[i] : std::to_string(i);
}

/// One call: counted when its status is sent.
class call_counter final : public gx::Interceptor {
 public:
  call_counter(actors::engine_api& engine, std::string method)
    : engine_(engine), method_(std::move(method)) {}

  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
          gx::InterceptionHookPoints::PRE_SEND_STATUS))
      engine_.metrics().request(
        "grpc", method_, code_name(methods->GetSendStatus().error_code()),
        took_.seconds());
    methods->Proceed();
  }

 private:
  actors::engine_api& engine_;
  std::string method_;
  actors::stopwatch took_;
};

class call_counter_factory final
  : public gx::ServerInterceptorFactoryInterface {
 public:
  explicit call_counter_factory(std::shared_ptr<actors::engine_api> engine)
    : engine_(std::move(engine)) {}

  gx::Interceptor* CreateServerInterceptor(gx::ServerRpcInfo* info) override {
    return new call_counter(*engine_, info->method() ? info->method() : "");
  }

 private:
  std::shared_ptr<actors::engine_api> engine_;
};

} // namespace

void count_grpc_calls(grpc::ServerBuilder& builder,
                      std::shared_ptr<actors::engine_api> engine) {
  std::vector<std::unique_ptr<gx::ServerInterceptorFactoryInterface>> f;
  f.push_back(std::make_unique<call_counter_factory>(std::move(engine)));
  builder.experimental().SetInterceptorCreators(std::move(f));
}

} // namespace cerebelum::api
