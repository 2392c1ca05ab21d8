// JSON renderings of protobuf messages shared by the HTTP API and the CLI.

#include <catch2/catch.hpp>

#include "admin.pb.h"
#include "src/bridges/json_convert.hpp"

using nlohmann::json;

TEST_CASE("_json fields are nested under their name without the suffix") {
  cerebelum::admin::ExecutionInfo info;
  info.set_execution_id("e");
  info.set_result_json(R"({"a":[1,2]})");
  auto out = cerebelum::api::message_to_json(info);
  CHECK(out["result"] == json{{"a", {1, 2}}});
  CHECK(out["input"].is_null());
  CHECK_FALSE(out.contains("result_json"));
  CHECK_FALSE(out.contains("error"));
  CHECK(out["history_length"] == 0);
}

TEST_CASE("an event is flattened with its type name") {
  cerebelum::events::Event ev;
  ev.set_seq(4);
  ev.mutable_approval_granted()->set_by("alice");
  ev.mutable_approval_granted()->set_data_json("true");
  auto out = cerebelum::api::event_to_json(ev);
  CHECK(out["seq"] == 4);
  CHECK(out["type"] == "approval_granted");
  CHECK(out["by"] == "alice");
  CHECK(out["data"] == true);
}

TEST_CASE("text that is not JSON is kept as a string, not lost") {
  cerebelum::admin::ExecutionInfo info;
  info.set_input_json("{broken");
  CHECK(cerebelum::api::message_to_json(info)["input"] == "{broken");
}

TEST_CASE("version hashes travel as decimal strings, other numbers do not") {
  // 2^63 + 1: a JavaScript client would read it as 9223372036854775808.
  constexpr std::uint64_t hash = 9223372036854775809ULL;
  cerebelum::admin::ExecutionInfo info;
  info.set_workflow_version(hash);
  info.set_history_length(3);
  auto out = cerebelum::api::message_to_json(info);
  CHECK(out["workflow_version"] == "9223372036854775809");
  CHECK(out["history_length"] == 3);
  cerebelum::admin::WorkflowInfo wf;
  wf.set_version(hash);
  wf.set_open_executions(2);
  auto listed = cerebelum::api::message_to_json(wf);
  CHECK(listed["version"] == "9223372036854775809");
  CHECK(listed["open_executions"] == 2);
  cerebelum::events::Event ev;
  ev.mutable_execution_started()->set_workflow_version(hash);
  CHECK(cerebelum::api::event_to_json(ev)["workflow_version"]
        == "9223372036854775809");
}
