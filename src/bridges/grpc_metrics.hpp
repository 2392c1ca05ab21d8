#pragma once

// Counts every gRPC call in the node's metrics (api grpc, the full method
// name and the status code, from its arrival to its status): a server
// interceptor, installed on the builder before the server starts.

#include <memory>

#include <grpcpp/server_builder.h>

namespace cerebelum::actors {
class engine_api;
} // namespace cerebelum::actors

namespace cerebelum::api {

void count_grpc_calls(grpc::ServerBuilder& builder,
                      std::shared_ptr<actors::engine_api> engine);

} // namespace cerebelum::api
