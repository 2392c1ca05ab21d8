#pragma once

// Internal helpers shared by the backends.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/result.hpp"
#include "eventstore/types.hpp"

namespace cerebelum::eventstore::detail {

/// Keyset position of a listing page: the last row's sort key.
struct page_position {
  std::int64_t created_at_ms = 0;
  std::string execution_id;
};

/// Renders a page token from the last row of a page.
std::string encode_page_token(const page_position& pos);

/// Parses a page token; an empty token is the first page (`std::nullopt`).
result<std::optional<page_position>> decode_page_token(std::string_view token);

/// Parses a numeric id page token (dead letters); empty = 0 (first page).
result<std::int64_t> decode_id_token(std::string_view token);

/// Lowercase hex of `bytes`.
std::string to_hex(std::string_view bytes);

/// Bounds a page size to [1, 10000].
std::size_t clamp_page_size(std::size_t n) noexcept;

/// `items` as a JSON array of strings: how the tokens table stores a
/// token's queues and workflows (any character survives, commas and quotes
/// too).
std::string encode_string_list(const std::vector<std::string>& items);

/// Parses what `encode_string_list` wrote. Throws `std::runtime_error`
/// naming `column` when `json` is not an array of strings (a damaged row;
/// the store reports it at its boundary).
std::vector<std::string> decode_string_list(std::string_view json,
                                            std::string_view column);

/// Checks what a store needs of a new token: a non-empty id and hash.
status validate_token(const token_row& row);

} // namespace cerebelum::eventstore::detail
