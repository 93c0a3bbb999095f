#include "crypto/tls_key_proof.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "crypto/sha256.h"

namespace mxkey {
namespace {

// The context, as protocol/signed_object.cc kTlsKeyProof (not a dependency
// of crypto/).
constexpr absl::string_view kContext("mxkey/v1 tls-key-proof\0", 23);

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string OpensslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

std::string ProofMessage(absl::string_view body) {
  return absl::StrCat(kContext, body);
}

// The digest for the key's kind, or null for Ed25519 (pure). INVALID_ARGUMENT
// for kinds and sizes not accepted.
absl::StatusOr<const EVP_MD*> DigestFor(EVP_PKEY* key) {
  switch (EVP_PKEY_base_id(key)) {
    case EVP_PKEY_RSA: {
      const int bits = EVP_PKEY_bits(key);
      if (bits < 2048 || bits > 8192) {
        return absl::InvalidArgumentError(absl::StrCat(
            "an RSA TLS key must have 2048 to 8192 bits, not ", bits));
      }
      // A huge public exponent would make every check cost a signature.
      BIGNUM* e = nullptr;
      if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        ERR_clear_error();
        return absl::InvalidArgumentError("an RSA TLS key without exponent");
      }
      const int e_bits = BN_num_bits(e);
      BN_free(e);
      if (e_bits > 32) {
        return absl::InvalidArgumentError(
            "an RSA TLS key's public exponent must fit in 32 bits");
      }
      return EVP_sha256();
    }
    case EVP_PKEY_EC: {
      // Named NIST curves only (not brainpool, secp256k1 or explicit
      // parameters).
      char group[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) {
        ERR_clear_error();
        group[0] = '\0';
      }
      const absl::string_view name(group);
      if (name != "prime256v1" && name != "P-256" && name != "secp384r1" &&
          name != "P-384" && name != "secp521r1" && name != "P-521") {
        return absl::InvalidArgumentError(
            "an ECDSA TLS key must be on P-256, P-384 or P-521");
      }
      return EVP_sha256();
    }
    case EVP_PKEY_ED25519:
      return nullptr;
    default:
      return absl::InvalidArgumentError(
          "a TLS key must be RSA, ECDSA (P-256, P-384, P-521) or Ed25519");
  }
}

absl::StatusOr<std::string> SpkiOf(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return absl::InternalError("i2d_PUBKEY: " + OpensslError());
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace

struct TlsKeySigner::Key {
  Pkey pkey;
};

TlsKeySigner::TlsKeySigner(std::unique_ptr<Key> key, std::string spki)
    : key_(std::move(key)), spki_der_(std::move(spki)) {}
TlsKeySigner::TlsKeySigner(TlsKeySigner&&) noexcept = default;
TlsKeySigner& TlsKeySigner::operator=(TlsKeySigner&&) noexcept = default;
TlsKeySigner::~TlsKeySigner() = default;

absl::StatusOr<TlsKeySigner> TlsKeySigner::FromPem(absl::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return absl::InternalError("BIO_new_mem_buf failed");
  // No passphrase callback: an encrypted key fails here instead of asking.
  Pkey pkey(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return -1; }, nullptr));
  if (!pkey) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not an unencrypted PEM private key: ", OpensslError()));
  }
  absl::StatusOr<const EVP_MD*> md = DigestFor(pkey.get());
  if (!md.ok()) return md.status();
  absl::StatusOr<std::string> spki = SpkiOf(pkey.get());
  if (!spki.ok()) return spki.status();
  return TlsKeySigner(std::make_unique<Key>(Key{std::move(pkey)}),
                      *std::move(spki));
}

absl::StatusOr<TlsKeySigner> TlsKeySigner::GenerateP256() {
  Pkey pkey(EVP_EC_gen("P-256"));
  if (!pkey) return absl::InternalError("EVP_EC_gen: " + OpensslError());
  absl::StatusOr<std::string> spki = SpkiOf(pkey.get());
  if (!spki.ok()) return spki.status();
  return TlsKeySigner(std::make_unique<Key>(Key{std::move(pkey)}),
                      *std::move(spki));
}

std::string TlsKeySigner::pin() const { return Sha256(spki_der_); }

absl::StatusOr<std::string> TlsKeySigner::SignProof(
    absl::string_view body) const {
  absl::StatusOr<const EVP_MD*> md = DigestFor(key_->pkey.get());
  if (!md.ok()) return md.status();
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  const std::string message = ProofMessage(body);
  size_t len = 0;
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, *md, nullptr,
                         key_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return absl::InternalError("EVP_DigestSign: " + OpensslError());
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                     &len,
                     reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return absl::InternalError("EVP_DigestSign: " + OpensslError());
  }
  sig.resize(len);
  return sig;
}

absl::Status VerifyTlsKeyProof(absl::string_view spki_der,
                               absl::string_view body,
                               absl::string_view signature) {
  if (spki_der.size() > kMaxTlsSpkiBytes ||
      signature.size() > kMaxTlsKeySignatureBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a TLS key proof has at most ", kMaxTlsSpkiBytes, " bytes of key and ",
        kMaxTlsKeySignatureBytes, " of signature"));
  }
  const unsigned char* p =
      reinterpret_cast<const unsigned char*>(spki_der.data());
  Pkey pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size())));
  if (!pkey || p != reinterpret_cast<const unsigned char*>(spki_der.data()) +
                        spki_der.size()) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "a TLS key proof's key is not a DER SubjectPublicKeyInfo");
  }
  absl::StatusOr<const EVP_MD*> md = DigestFor(pkey.get());
  if (!md.ok()) return md.status();
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  const std::string message = ProofMessage(body);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, *md, nullptr,
                                   pkey.get()) != 1) {
    return absl::InternalError("EVP_DigestVerifyInit: " + OpensslError());
  }
  const int ok = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
      signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
      message.size());
  ERR_clear_error();
  if (ok != 1) {
    return absl::PermissionDeniedError(
        "the TLS key proof does not verify: the request was not signed with "
        "the private key of the pinned TLS key");
  }
  return absl::OkStatus();
}

}  // namespace mxkey
