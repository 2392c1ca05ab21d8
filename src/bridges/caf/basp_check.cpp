#include "src/bridges/caf/basp_check.hpp"

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#include <algorithm>
#include <utility>

#include "wire/wire.hpp"

namespace cerebelum::caf_guard {

namespace {

constexpr std::uint8_t select_connection_flag = 0x02;

/// A serialized `caf::node_id` of the "default" kind: the atom "default",
/// a process id (u32) and a 20-byte host id (a fixed array: no length).
constexpr std::size_t node_id_size = 8 + 4 + 20;

/// Longest varbyte length CAF can produce for a 32-bit size.
constexpr int max_varbyte_bytes = 5;

/// Reads big-endian integers, CAF varbyte lengths and strings from a byte
/// range; every read fails (returns nothing) past the end.
class reader {
 public:
  reader(const std::uint8_t* data, std::size_t size)
    : pos_(data), end_(data + size) {
    // nop
  }

  std::size_t remaining() const {
    return static_cast<std::size_t>(end_ - pos_);
  }

  template <class T>
  std::optional<T> big_endian() {
    if (remaining() < sizeof(T)) return std::nullopt;
    T x = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
      x = static_cast<T>((x << 8) | pos_[i]);
    pos_ += sizeof(T);
    return x;
  }

  std::optional<std::uint32_t> varbyte() {
    std::uint32_t x = 0;
    for (int n = 0; n < max_varbyte_bytes; ++n) {
      if (remaining() == 0) return std::nullopt;
      auto low7 = *pos_++;
      x |= static_cast<std::uint32_t>(low7 & 0x7F) << (7 * n);
      if ((low7 & 0x80) == 0) return x;
    }
    return std::nullopt; // longer than any 32-bit length
  }

  std::optional<std::string_view> bytes(std::size_t n) {
    if (remaining() < n) return std::nullopt;
    std::string_view result{reinterpret_cast<const char*>(pos_), n};
    pos_ += n;
    return result;
  }

 private:
  const std::uint8_t* pos_;
  const std::uint8_t* end_;
};

constexpr auto default_node_kind
  = static_cast<std::uint64_t>(caf::atom("default"));

/// The only named receiver: a worker's middleman asks the node's spawn
/// server for "info" when it connects (basp_broker::learned_new_node).
constexpr auto spawn_server
  = static_cast<std::uint64_t>(caf::atom("SpawnServ"));

constexpr std::uint8_t named_receiver_flag = 0x01;

/// The one message a worker sends to "SpawnServ": (sys, get, "info"),
/// after an empty forwarding stack.
std::vector<std::uint8_t> spawn_server_query() {
  std::vector<std::uint8_t> out{0x00, 0x00, 0x00};
  std::string_view types = "@<>+@atom+@atom+@str";
  out.push_back(static_cast<std::uint8_t>(types.size()));
  out.insert(out.end(), types.begin(), types.end());
  for (auto atom : {caf::atom("sys"), caf::atom("get")})
    for (int i = 7; i >= 0; --i)
      out.push_back(
        static_cast<std::uint8_t>(static_cast<std::uint64_t>(atom) >> (8 * i)));
  out.push_back(4);
  for (char c : std::string_view{"info"})
    out.push_back(static_cast<std::uint8_t>(c));
  return out;
}

/// Reads one node id; fails unless it is of the "default" kind with a
/// non-zero host id (CAF's own ids always are).
std::optional<std::string> read_node_id(reader& in) {
  auto kind = in.big_endian<std::uint64_t>();
  if (!kind) return "truncated node id";
  if (*kind != default_node_kind) return "node id of an unknown kind";
  auto pid = in.big_endian<std::uint32_t>();
  auto host = in.bytes(20);
  if (!pid || !host) return "truncated node id";
  if (std::all_of(host->begin(), host->end(), [](char c) {
        return c == 0;
      }))
    return "node id with an empty host id";
  return std::nullopt;
}

/// `text` with every byte outside printable ASCII as '?': peer bytes go
/// into log lines.
std::string printable(std::string_view text) {
  std::string out{text};
  for (auto& c : out)
    if (c < 0x20 || c > 0x7E) c = '?';
  return out;
}

/// Reads the start of a serialized `caf::message`: object number 0 and the
/// type name "@<>+T1+T2..." whose every Ti must be allowed. The values that
/// follow are not parsed.
std::optional<std::string>
read_message_types(reader& in,
                   const std::set<std::string, std::less<>>& allowed) {
  auto nr = in.big_endian<std::uint16_t>();
  if (!nr) return "truncated message";
  if (*nr != 0) return "message with a numbered type";
  auto len = in.varbyte();
  if (!len) return "truncated message type";
  auto name = in.bytes(*len);
  if (!name) return "message type name beyond the inspected bytes";
  constexpr std::string_view empty = "@<>";
  if (*name == empty) return std::nullopt;
  if (name->substr(0, 4) != "@<>+") return "malformed message type name";
  auto rest = name->substr(4);
  for (;;) {
    auto plus = rest.find('+');
    auto type = rest.substr(0, plus);
    if (allowed.find(type) == allowed.end())
      return "message type '" + printable(type.substr(0, 64)) + "' not allowed";
    if (plus == std::string_view::npos) return std::nullopt;
    rest = rest.substr(plus + 1);
  }
}

std::string op_name(std::uint8_t op) {
  switch (static_cast<basp_op>(op)) {
    case basp_op::server_handshake: return "server_handshake";
    case basp_op::client_handshake: return "client_handshake";
    case basp_op::direct_message: return "direct_message";
    case basp_op::routed_message: return "routed_message";
    case basp_op::monitor_message: return "monitor_message";
    case basp_op::down_message: return "down_message";
    case basp_op::heartbeat: return "heartbeat";
  }
  return "operation " + std::to_string(op);
}

} // namespace

basp_header decode_header(const std::uint8_t* bytes) {
  reader in{bytes, basp_header_size};
  basp_header hdr;
  hdr.operation = *in.big_endian<std::uint8_t>();
  hdr.padding1 = *in.big_endian<std::uint8_t>();
  hdr.padding2 = *in.big_endian<std::uint8_t>();
  hdr.flags = *in.big_endian<std::uint8_t>();
  hdr.payload_len = *in.big_endian<std::uint32_t>();
  hdr.operation_data = *in.big_endian<std::uint64_t>();
  hdr.source_actor = *in.big_endian<std::uint64_t>();
  hdr.dest_actor = *in.big_endian<std::uint64_t>();
  return hdr;
}

std::vector<std::uint8_t> encode_header(const basp_header& hdr) {
  std::vector<std::uint8_t> out;
  auto put = [&out](std::uint64_t x, int size) {
    for (int i = size - 1; i >= 0; --i)
      out.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
  };
  put(hdr.operation, 1);
  put(hdr.padding1, 1);
  put(hdr.padding2, 1);
  put(hdr.flags, 1);
  put(hdr.payload_len, 4);
  put(hdr.operation_data, 8);
  put(hdr.source_actor, 8);
  put(hdr.dest_actor, 8);
  return out;
}

std::set<std::string, std::less<>> worker_type_names() {
  auto names = wire::type_names();
  // CAF's own connection setup: a worker's spawn server answers the node
  // middleman's (sys, get, "info") with (ok, "info", actor, name).
  for (const char* builtin : {"@atom", "@str", "@strong_actor_ptr"})
    names.emplace(builtin);
  return names;
}

basp_checker::verdict basp_checker::feed(const std::uint8_t* bytes,
                                         std::size_t size) {
  verdict result;
  while (result.forward < size) {
    auto left = size - result.forward;
    if (streaming_ > 0) {
      auto n
        = static_cast<std::size_t>(std::min<std::uint64_t>(streaming_, left));
      streaming_ -= n;
      result.forward += n;
      continue;
    }
    if (left < basp_header_size) break;
    auto* frame = bytes + result.forward;
    auto hdr = decode_header(frame);
    // Refuse an oversized length before waiting for its payload.
    if (hdr.payload_len > limits_->max_payload) {
      result.error = op_name(hdr.operation) + " header declares a payload of "
                     + std::to_string(hdr.payload_len) + " bytes (limit "
                     + std::to_string(limits_->max_payload) + ")";
      return result;
    }
    auto inspected = std::min(hdr.payload_len, limits_->max_inspected);
    if (left < basp_header_size + inspected) {
      // Check the header alone at once: a bad one must not wait for bytes.
      if (auto err = check_frame(hdr, nullptr, 0)) result.error = err;
      break;
    }
    if (auto err = check_frame(hdr, frame + basp_header_size, inspected)) {
      result.error = std::move(err);
      return result;
    }
    ++frames_;
    result.forward += basp_header_size + inspected;
    streaming_ = hdr.payload_len - inspected;
  }
  return result;
}

std::optional<std::string>
basp_checker::check_frame(const basp_header& hdr, const std::uint8_t* payload,
                          std::size_t inspected) {
  auto name = op_name(hdr.operation);
  if (hdr.padding1 != 0 || hdr.padding2 != 0)
    return name + " header with non-zero padding";
  auto op = static_cast<basp_op>(hdr.operation);
  if (node_id_.empty() && op != basp_op::client_handshake)
    return "first frame is a " + name + ", not a client_handshake";
  auto flags_ok = hdr.flags == 0
                  || (op == basp_op::client_handshake
                      && hdr.flags == select_connection_flag)
                  || (op == basp_op::direct_message
                      && hdr.flags == named_receiver_flag
                      && hdr.dest_actor == spawn_server);
  if (!flags_ok)
    return name + " header with flags " + std::to_string(hdr.flags);
  // The header alone (no payload yet): `payload` is null.
  switch (op) {
    case basp_op::client_handshake: {
      if (hdr.payload_len != node_id_size)
        return "client_handshake payload of " + std::to_string(hdr.payload_len)
               + " bytes (a node id has " + std::to_string(node_id_size) + ")";
      if (hdr.operation_data != 0 || hdr.source_actor != 0
          || hdr.dest_actor != 0)
        return "client_handshake header with non-zero ids";
      if (payload == nullptr) return std::nullopt;
      return check_handshake(hdr, payload);
    }
    case basp_op::direct_message: {
      if (hdr.dest_actor == 0 || hdr.payload_len == 0)
        return "direct_message without receiver or payload";
      if (hdr.flags == named_receiver_flag) {
        // CAF's spawn server prints whatever else it gets to stdout.
        static const auto query = spawn_server_query();
        if (hdr.payload_len != query.size())
          return "direct_message to SpawnServ that is not the info query";
        if (payload == nullptr) return std::nullopt;
        if (!std::equal(query.begin(), query.end(), payload))
          return "direct_message to SpawnServ that is not the info query";
        return std::nullopt;
      }
      // The message id's category (bits 60-61): 2 and 3 are CAF's stream
      // messages, whose content an actor's mailbox reads as a stream
      // message without checking it (a string there crashed the node).
      if (auto category = (hdr.operation_data >> 60) & 0x3; category > 1)
        return "direct_message with a stream message id (category "
               + std::to_string(category) + ")";
      if (!may_send_to(hdr.dest_actor, payload != nullptr))
        return "direct_message to actor " + std::to_string(hdr.dest_actor)
               + ", which the node did not introduce";
      if (payload == nullptr) return std::nullopt;
      reader in{payload, inspected};
      auto stack = in.varbyte();
      if (!stack) return "direct_message: truncated forwarding stack";
      if (*stack != 0) return "direct_message with a forwarding stack";
      if (auto err = read_message_types(in, limits_->allowed_types))
        return "direct_message: " + *err;
      return std::nullopt;
    }
    case basp_op::monitor_message: {
      if (hdr.payload_len != 2 * node_id_size || hdr.operation_data != 0
          || hdr.source_actor != 0 || hdr.dest_actor == 0)
        return "malformed monitor_message header";
      if (payload == nullptr) return std::nullopt;
      reader in{payload, inspected};
      for (int i = 0; i < 2; ++i)
        if (auto err = read_node_id(in)) return "monitor_message: " + *err;
      return std::nullopt;
    }
    case basp_op::down_message: {
      if (hdr.payload_len == 0 || hdr.operation_data != 0
          || hdr.source_actor == 0 || hdr.dest_actor != 0)
        return "malformed down_message header";
      if (payload == nullptr) return std::nullopt;
      reader in{payload, inspected};
      for (int i = 0; i < 2; ++i)
        if (auto err = read_node_id(in)) return "down_message: " + *err;
      // The exit reason: code, category atom, context message.
      if (!in.big_endian<std::uint8_t>() || !in.big_endian<std::uint64_t>())
        return "down_message: truncated error";
      if (auto err = read_message_types(in, limits_->allowed_types))
        return "down_message: " + *err;
      return std::nullopt;
    }
    case basp_op::heartbeat:
      if (hdr.payload_len != 0 || hdr.operation_data != 0
          || hdr.source_actor != 0 || hdr.dest_actor != 0)
        return "malformed heartbeat header";
      return std::nullopt;
    case basp_op::server_handshake: return "server_handshake from a client";
    case basp_op::routed_message:
      return "routed_message (workers talk to the node directly)";
  }
  return "unknown " + name;
}

void basp_checker::allow_destination(std::uint64_t id) {
  destinations_.push_back(id);
}

void basp_checker::allow_one_message_to(std::uint64_t id) {
  // The node's middleman asks once per connection; a few are plenty.
  if (answers_.size() < 16) answers_.push_back(id);
}

bool basp_checker::may_send_to(std::uint64_t id, bool use) {
  if (std::find(destinations_.begin(), destinations_.end(), id)
      != destinations_.end())
    return true;
  auto i = std::find(answers_.begin(), answers_.end(), id);
  if (i == answers_.end()) return false;
  if (use) answers_.erase(i);
  return true;
}

std::optional<std::string>
basp_checker::check_handshake(const basp_header& hdr,
                              const std::uint8_t* payload) {
  reader in{payload, hdr.payload_len};
  if (auto err = read_node_id(in)) return "client_handshake: " + *err;
  std::vector<std::uint8_t> id{payload, payload + hdr.payload_len};
  if (node_id_.empty()) {
    node_id_ = std::move(id);
  } else if (id != node_id_) {
    return "client_handshake with another node id";
  }
  return std::nullopt;
}

std::optional<std::string> basp_server_tracker::feed(const std::uint8_t* bytes,
                                                     std::size_t size,
                                                     basp_checker& checker) {
  while (size > 0) {
    if (skip_ > 0) {
      auto n = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, size));
      if (first_) handshake_.insert(handshake_.end(), bytes, bytes + n);
      skip_ -= n;
      bytes += n;
      size -= n;
      if (skip_ == 0 && first_)
        if (auto err = on_handshake(checker)) return err;
      continue;
    }
    auto n = std::min(size, basp_header_size - header_fill_);
    std::copy(bytes, bytes + n, header_ + header_fill_);
    header_fill_ += n;
    bytes += n;
    size -= n;
    if (header_fill_ == basp_header_size) {
      header_fill_ = 0;
      if (auto err = on_header(checker)) return err;
    }
  }
  return std::nullopt;
}

std::optional<std::string>
basp_server_tracker::on_header(basp_checker& checker) {
  current_ = decode_header(header_);
  skip_ = current_.payload_len;
  if (first_) {
    if (current_.operation
        != static_cast<std::uint8_t>(basp_op::server_handshake))
      return "the node's first frame is not a server_handshake";
    // A node id, one app id and an interface or two: far below this.
    if (current_.payload_len > 64 * 1024)
      return "the node's server_handshake is too large to follow";
    if (skip_ == 0) return on_handshake(checker);
    return std::nullopt;
  }
  if (current_.operation == static_cast<std::uint8_t>(basp_op::direct_message)
      && current_.flags == named_receiver_flag
      && current_.dest_actor == spawn_server)
    checker.allow_one_message_to(current_.source_actor);
  return std::nullopt;
}

std::optional<std::string>
basp_server_tracker::on_handshake(basp_checker& checker) {
  first_ = false;
  // node id, app ids (a sequence of strings), the published actor's id.
  reader in{handshake_.data(), handshake_.size()};
  if (auto err = read_node_id(in))
    return "the node's server_handshake: " + *err;
  auto ids = in.varbyte();
  if (!ids) return "the node's server_handshake: truncated app ids";
  for (std::uint32_t i = 0; i < *ids; ++i) {
    auto len = in.varbyte();
    if (!len || !in.bytes(*len))
      return "the node's server_handshake: truncated app ids";
  }
  auto aid = in.big_endian<std::uint64_t>();
  if (!aid) return "the node's server_handshake: no actor id";
  if (*aid != 0) checker.allow_destination(*aid);
  handshake_.clear();
  handshake_.shrink_to_fit();
  return std::nullopt;
}

} // namespace cerebelum::caf_guard
