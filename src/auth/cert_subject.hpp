#pragma once

// The subject of a client certificate, as a principal is bound to it
// (docs/security.md). The form is RFC 2253, the one
// `openssl x509 -noout -subject -nameopt RFC2253` prints and gRPC reports:
//
// ```
//   CN=ci-runner,OU=build,O=Example\, Inc.
// ```
//
// The most specific attribute comes first (the reverse of the order in the
// certificate and of OpenSSL's default `-subject` output); special
// characters in a value are escaped with a backslash. Two subjects match
// when their normal forms are equal: spaces around `,`, `+` and `=` are
// dropped and attribute types are written as OpenSSL's short names (`cn`
// and `commonName` become `CN`). Values compare exactly, case included.

#include <optional>
#include <string>
#include <string_view>

struct x509_st;

namespace cerebelum::auth {

/// The normal form of `text` (RFC 2253), or nothing when it is not one:
/// empty, an attribute without `=` or with an empty value, an unknown
/// attribute type, or OpenSSL's `/CN=...` form.
std::optional<std::string> normalize_subject(std::string_view text);

/// The subject of `cert` in normal form ("" when it has none).
std::string subject_of(x509_st* cert);

/// The subject of the first certificate in `pem` in normal form ("" when
/// `pem` holds none).
std::string subject_of_pem(std::string_view pem);

} // namespace cerebelum::auth
