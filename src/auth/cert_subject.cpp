#include "src/auth/cert_subject.hpp"

#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cctype>
#include <memory>
#include <vector>

namespace cerebelum::auth {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/// Whether the character at `i` of `text` is escaped (an odd number of
/// backslashes right before it).
bool escaped(std::string_view text, std::size_t i) {
  std::size_t n = 0;
  while (i > n && text[i - n - 1] == '\\')
    ++n;
  return n % 2 == 1;
}

/// `text` without leading spaces and unescaped trailing ones.
std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())
         && !escaped(text, text.size() - 1))
    text.remove_suffix(1);
  return text;
}

/// OpenSSL's short name of attribute type `type` (any case, short or long
/// name, or a dotted OID), or "".
std::string attribute_type(std::string_view type) {
  std::string t{type};
  if (t.empty()) return {};
  if (t.find_first_not_of("0123456789.") == std::string::npos) {
    auto nid = OBJ_txt2nid(t.c_str());
    return nid == NID_undef ? t : OBJ_nid2sn(nid);
  }
  auto nid = OBJ_sn2nid(t.c_str());
  if (nid == NID_undef) nid = OBJ_ln2nid(t.c_str());
  if (nid == NID_undef) {
    // Short names are upper case but for a few (emailAddress, UID, ...):
    // try the common spellings.
    std::string upper = t;
    for (auto& c : upper)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    nid = OBJ_sn2nid(upper.c_str());
  }
  if (nid == NID_undef) return {};
  return OBJ_nid2sn(nid);
}

} // namespace

std::optional<std::string> normalize_subject(std::string_view text) {
  text = trim(text);
  if (text.empty() || text.front() == '/') return std::nullopt;
  std::string out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    bool end = i == text.size();
    if (!end && ((text[i] != ',' && text[i] != '+') || escaped(text, i)))
      continue;
    auto ava = text.substr(start, i - start);
    auto eq = ava.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    auto type = attribute_type(trim(ava.substr(0, eq)));
    auto value = trim(ava.substr(eq + 1));
    if (type.empty() || value.empty()) return std::nullopt;
    out += type;
    out += '=';
    out += value;
    if (!end) out += text[i];
    start = i + 1;
  }
  return out;
}

std::string subject_of(x509_st* cert) {
  if (cert == nullptr) return {};
  auto* name = X509_get_subject_name(cert);
  if (name == nullptr) return {};
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()),
                                                &BIO_free};
  if (!bio) return {};
  // The flags gRPC uses for its "x509_subject" property.
  if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  auto len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0) return {};
  auto normal = normalize_subject(std::string_view{data, std::size_t(len)});
  return normal ? *normal : std::string{};
}

std::string subject_of_pem(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{
    BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free};
  if (!bio) return {};
  std::unique_ptr<X509, decltype(&X509_free)> cert{
    PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free};
  return subject_of(cert.get());
}

} // namespace cerebelum::auth
