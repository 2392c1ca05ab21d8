#include "eventstore/store_util.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace cerebelum::eventstore::detail {

std::string encode_page_token(const page_position& pos) {
  return std::to_string(pos.created_at_ms) + ":" + pos.execution_id;
}

result<std::optional<page_position>> decode_page_token(std::string_view token) {
  if (token.empty()) return std::optional<page_position>{};
  auto colon = token.find(':');
  page_position pos;
  auto num = token.substr(0, colon);
  auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(),
                                   pos.created_at_ms);
  if (colon == std::string_view::npos || ec != std::errc{}
      || ptr != num.data() + num.size())
    return make_error(errc::invalid_argument,
                      "malformed page token '" + std::string{token}
                        + "': pass the next_page_token of the previous page");
  pos.execution_id = std::string{token.substr(colon + 1)};
  return std::optional<page_position>{std::move(pos)};
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.resize(bytes.size() * 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = digits[b >> 4];
    out[2 * i + 1] = digits[b & 0xf];
  }
  return out;
}

result<std::int64_t> decode_id_token(std::string_view token) {
  if (token.empty()) return std::int64_t{0};
  std::int64_t id = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(),
                                   id);
  if (ec != std::errc{} || ptr != token.data() + token.size() || id < 0)
    return make_error(errc::invalid_argument,
                      "malformed page token '" + std::string{token}
                        + "': pass the next_page_token of the previous page");
  return id;
}

std::size_t clamp_page_size(std::size_t n) noexcept {
  return std::clamp<std::size_t>(n, 1, 10'000);
}

std::string encode_string_list(const std::vector<std::string>& items) {
  return nlohmann::json(items).dump();
}

std::vector<std::string> decode_string_list(std::string_view json,
                                            std::string_view column) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_array() && std::all_of(doc.begin(), doc.end(), [](const auto& x) {
        return x.is_string();
      }))
    return doc.get<std::vector<std::string>>();
  throw std::runtime_error{"tokens." + std::string{column}
                           + " is not a JSON array of strings: "
                           + std::string{json.substr(0, 80)}};
}

status validate_token(const token_row& row) {
  if (row.id.empty())
    return make_error(errc::invalid_argument, "token with an empty id");
  if (row.hash.empty() == row.cert_subject.empty())
    return make_error(errc::invalid_argument,
                      "token '" + row.id
                        + (row.hash.empty()
                             ? "' without a hash or a certificate subject"
                             : "' with both a hash and a certificate "
                               "subject"));
  return ok_status();
}

} // namespace cerebelum::eventstore::detail
