#pragma once

// Checks the byte stream a CAF worker sends to the node (client -> server)
// as BASP frames of libcaf_io 0.17.6, before any of it reaches libcaf_io.
//
// A BASP frame is a 32-byte header followed by `payload_len` bytes. Every
// integer is big-endian (CAF's binary_serializer writes network order):
//
// ```
//  offset  size  field            what CAF 0.17.6 writes
//       0     1  operation        message_type 0x00..0x06
//       1     1  padding1         0
//       2     1  padding2         0
//       3     1  flags            0x01 named receiver, 0x02 select connection
//       4     4  payload_len      bytes after the header
//       8     8  operation_data   message id / BASP version
//      16     8  source_actor     actor id
//      24     8  dest_actor       actor id
// ```
//
// libcaf_io trusts this header: it reserves `payload_len` bytes before any
// arrive (a 4 GiB header costs 4 GiB), dereferences a null payload for a
// handshake of length 0 (SIGSEGV), and its deserializers resize byte
// buffers to lengths read from the payload. The checker passes only the
// shapes a CAF 0.17.6 worker sends, with lengths within `max_payload`:
//
// ```
//  frame             flags  payload
//  client_handshake  0|2    exactly one node id: "default" atom, pid, host
//                           (32 bytes); always the same node id; first frame
//  direct_message    0      to the published gateway (or, once, to a node
//                           actor that asked for it, see
//                           basp_server_tracker); empty forwarding stack,
//                           then a message whose element types are all in
//                           the allow-list
//                    1      to "SpawnServ", exactly (sys, get, "info")
//  monitor_message   0      exactly two node ids (64 bytes)
//  down_message      0      two node ids, then an error whose context
//                           message's types are all in the allow-list
//  heartbeat         0      none
// ```
// Every header also passes libcaf_io's own `valid()` and has zero padding.
// A server_handshake (a client never sends one) and a routed_message (a
// worker talks to the node directly, never through it) are refused. The
// only named receiver is "SpawnServ", and only with the message a worker's
// middleman sends it when it connects: (sys, get, "info").
// Only the first `max_inspected` bytes of a payload are parsed: everything
// checked lies there; the rest of a payload is values of allowed types.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace cerebelum::caf_guard {

/// BASP operations (libcaf_io 0.17.6 `caf::io::basp::message_type`).
enum class basp_op : std::uint8_t {
  server_handshake = 0x00,
  client_handshake = 0x01,
  direct_message = 0x02,
  routed_message = 0x03,
  monitor_message = 0x04,
  down_message = 0x05,
  heartbeat = 0x06,
};

/// Size of a serialized BASP header.
inline constexpr std::size_t basp_header_size = 32;

/// A decoded BASP header.
struct basp_header {
  std::uint8_t operation = 0;
  std::uint8_t padding1 = 0;
  std::uint8_t padding2 = 0;
  std::uint8_t flags = 0;
  std::uint32_t payload_len = 0;
  std::uint64_t operation_data = 0;
  std::uint64_t source_actor = 0;
  std::uint64_t dest_actor = 0;
};

/// Decodes the first `basp_header_size` bytes of `bytes`.
basp_header decode_header(const std::uint8_t* bytes);

/// Encodes `hdr` into 32 bytes (tests and the fuzzer build frames with it).
std::vector<std::uint8_t> encode_header(const basp_header& hdr);

/// What the checker lets through.
struct check_limits {
  /// Largest payload of one frame. Worker messages carry JSON texts of at
  /// most 1 MiB each (actors/task_api.hpp); gRPC takes 4 MiB messages.
  std::uint32_t max_payload = 4 * 1024 * 1024;

  /// Bytes of a payload parsed before the frame is forwarded.
  std::uint32_t max_inspected = 4096;

  /// Message element type names a peer may send (see `worker_type_names`).
  std::set<std::string, std::less<>> allowed_types;
};

/// The allow-list for the node's worker gateway: the message types of the
/// wire (`wire::type_names()`, the `cerebelum_wire` type id block) and the
/// CAF built-ins of CAF's own connection setup (atoms, strings, actor
/// handles). Not allowed, among others: `@charbuf` (CAF resizes it to a
/// length read from the payload before checking it), `@error`/`@message`
/// (nested messages) and integers (no wire message is one).
std::set<std::string, std::less<>> worker_type_names();

/// Checks the client -> server stream of one connection, frame by frame.
class basp_checker {
 public:
  explicit basp_checker(const check_limits& limits) : limits_(&limits) {
    // nop
  }

  /// The outcome of `feed`.
  struct verdict {
    /// Bytes from the start of the input that were checked and may be
    /// forwarded.
    std::size_t forward = 0;

    /// Set when the stream is not BASP as a CAF worker writes it; the
    /// connection must be closed (bytes after `forward` must not be sent).
    std::optional<std::string> error;
  };

  /// Checks `bytes`, the stream's next bytes after everything forwarded so
  /// far. Consumes whole frames (a header only with enough of its payload to
  /// check it); call again with the bytes not forwarded and more input.
  verdict feed(const std::uint8_t* bytes, std::size_t size);

  /// Number of frames whose header was accepted.
  std::uint64_t frames() const {
    return frames_;
  }

  /// The node id the worker's client_handshake named (its serialized 32
  /// bytes), empty before one was accepted.
  const std::vector<std::uint8_t>& node_id() const {
    return node_id_;
  }

  /// The node published `id` on this connection: direct messages to it
  /// pass.
  void allow_destination(std::uint64_t id);

  /// Node actor `id` sent the worker a message that expects one answer:
  /// one direct message to it passes.
  void allow_one_message_to(std::uint64_t id);

 private:
  /// Checks one header and the inspected prefix of its payload.
  std::optional<std::string> check_frame(const basp_header& hdr,
                                         const std::uint8_t* payload,
                                         std::size_t inspected);

  std::optional<std::string> check_handshake(const basp_header& hdr,
                                             const std::uint8_t* payload);

  /// Whether a direct message may go to `id`; `use` spends a one-time
  /// permission.
  bool may_send_to(std::uint64_t id, bool use);

  const check_limits* limits_;

  /// Payload bytes of the current frame still to pass unchecked.
  std::uint64_t streaming_ = 0;

  /// The node id of the first client_handshake.
  std::vector<std::uint8_t> node_id_;

  /// Actors a direct message may go to (any number / one message each).
  std::vector<std::uint64_t> destinations_;
  std::vector<std::uint64_t> answers_;

  std::uint64_t frames_ = 0;
};

/// Follows the node -> worker stream (written by this node's libcaf_io, not
/// checked) to learn which node actors the worker may send messages to:
/// the published gateway, from the server_handshake, and, once each, the
/// helper actors of the node's middleman that ask the worker's "SpawnServ"
/// for "info". Other node actors a peer can name by id include CAF's spawn
/// server, which prints whatever it does not understand, and those helpers,
/// which keep unexpected messages queued for minutes.
class basp_server_tracker {
 public:
  /// Follows `size` more bytes of the stream; fails when the server
  /// handshake is not as libcaf_io writes it.
  std::optional<std::string> feed(const std::uint8_t* bytes, std::size_t size,
                                  basp_checker& checker);

 private:
  std::optional<std::string> on_header(basp_checker& checker);
  std::optional<std::string> on_handshake(basp_checker& checker);

  std::uint8_t header_[basp_header_size] = {};
  std::size_t header_fill_ = 0;
  basp_header current_;
  /// Payload bytes of the current frame still to pass.
  std::uint64_t skip_ = 0;
  /// The server_handshake payload while it arrives.
  std::vector<std::uint8_t> handshake_;
  bool first_ = true;
};

} // namespace cerebelum::caf_guard
