#include "crypto/x509_identity.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace mxkey {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Object = std::unique_ptr<ASN1_OBJECT, Deleter<ASN1_OBJECT, ASN1_OBJECT_free>>;
using Octets =
    std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;
using Extension =
    std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

absl::Status OpenSslError(absl::string_view what) {
  return absl::InternalError(absl::StrCat("TLS identity: ", what, " failed"));
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

absl::StatusOr<std::string> SpkiDer(X509* cert) {
  unsigned char* der = nullptr;
  const int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (n <= 0) return absl::InvalidArgumentError("certificate has no public key");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

Object BindingOid() { return Object(OBJ_txt2obj(kKeydBindingOid, 1)); }

}  // namespace

absl::StatusOr<TlsIdentity> MakeTlsIdentity(
    const std::function<absl::StatusOr<std::string>(absl::string_view spki)>&
        binding,
    absl::Time not_before, absl::Time not_after) {
  PKey key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("P-256 key generation");
  Cert cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1 ||
      ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) != 1 ||
      X509_set_pubkey(cert.get(), key.get()) != 1) {
    return OpenSslError("certificate setup");
  }
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                    absl::ToTimeT(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(not_after)) ==
          nullptr) {
    return OpenSslError("certificate validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(
          name, "CN", MBSTRING_ASC,
          reinterpret_cast<const unsigned char*>("mxkey keyd"), -1, -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1) {
    return OpenSslError("certificate name");
  }
  absl::StatusOr<std::string> spki = SpkiDer(cert.get());
  if (!spki.ok()) return spki.status();
  absl::StatusOr<std::string> bytes = binding(*spki);
  if (!bytes.ok()) return bytes.status();
  Object oid = BindingOid();
  Octets octets(ASN1_OCTET_STRING_new());
  if (!oid || !octets ||
      ASN1_OCTET_STRING_set(octets.get(),
                            reinterpret_cast<const unsigned char*>(bytes->data()),
                            static_cast<int>(bytes->size())) != 1) {
    return OpenSslError("binding extension");
  }
  Extension ext(
      X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, octets.get()));
  if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1) {
    return OpenSslError("binding extension");
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    return OpenSslError("certificate signature");
  }
  Bio key_bio(BIO_new(BIO_s_mem())), cert_bio(BIO_new(BIO_s_mem()));
  if (!key_bio || !cert_bio ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1 ||
      PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1) {
    return OpenSslError("PEM encoding");
  }
  TlsIdentity out;
  std::string key_text = BioText(key_bio.get());
  out.key_pem = SecretBytes(key_text);
  OPENSSL_cleanse(key_text.data(), key_text.size());
  out.cert_pem = BioText(cert_bio.get());
  out.spki_der = *std::move(spki);
  return out;
}

absl::StatusOr<PresentedCertificate> ReadPresentedCertificate(
    absl::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpenSslError("reading certificate");
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return absl::InvalidArgumentError("presented TLS certificate does not parse");
  }
  PresentedCertificate out;
  absl::StatusOr<std::string> spki = SpkiDer(cert.get());
  if (!spki.ok()) return spki.status();
  out.spki_der = *std::move(spki);
  Object oid = BindingOid();
  const int at = oid ? X509_get_ext_by_OBJ(cert.get(), oid.get(), -1) : -1;
  if (at >= 0) {
    ASN1_OCTET_STRING* data =
        X509_EXTENSION_get_data(X509_get_ext(cert.get(), at));
    out.binding = std::string(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
        static_cast<size_t>(ASN1_STRING_length(data)));
  }
  struct tm tm;
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) {
    return absl::InvalidArgumentError("presented TLS certificate has a bad date");
  }
  out.not_after = absl::FromTimeT(timegm(&tm));
  return out;
}

}  // namespace mxkey
