// Proofs of possession of a TLS key (trust core III #7).
#include "crypto/tls_key_proof.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "crypto/sha256.h"
#include "gtest/gtest.h"

namespace mxkey {
namespace {

// PEM (PKCS#8) of a new key made by `gen`.
std::string PemOf(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

TEST(TlsKeyProofTest, AProofVerifiesForItsBodyAndKeyOnly) {
  auto key = TlsKeySigner::GenerateP256();
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->pin(), Sha256(key->spki_der()));
  auto proof = key->SignProof("body");
  ASSERT_TRUE(proof.ok()) << proof.status();
  EXPECT_TRUE(VerifyTlsKeyProof(key->spki_der(), "body", *proof).ok());
  EXPECT_EQ(VerifyTlsKeyProof(key->spki_der(), "other body", *proof).code(),
            absl::StatusCode::kPermissionDenied);
  auto other = TlsKeySigner::GenerateP256();
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(VerifyTlsKeyProof(other->spki_der(), "body", *proof).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(VerifyTlsKeyProof("not der", "body", *proof).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyTlsKeyProof(key->spki_der() + "x", "body", *proof).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TlsKeyProofTest, PemKeysOfEveryAcceptedKindSignAndVerify) {
  for (EVP_PKEY* k : {EVP_RSA_gen(2048), EVP_EC_gen("P-384"),
                      EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")}) {
    ASSERT_NE(k, nullptr);
    auto key = TlsKeySigner::FromPem(PemOf(k));
    ASSERT_TRUE(key.ok()) << key.status();
    auto proof = key->SignProof("enrollment");
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_TRUE(VerifyTlsKeyProof(key->spki_der(), "enrollment", *proof).ok());
  }
}

TEST(TlsKeyProofTest, WeakOrOtherKeysAndBadPemAreRefused) {
  EXPECT_EQ(TlsKeySigner::FromPem(PemOf(EVP_RSA_gen(1024))).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsKeySigner::FromPem(PemOf(EVP_PKEY_Q_keygen(nullptr, nullptr,
                                                          "X25519")))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TlsKeySigner::FromPem(PemOf(EVP_PKEY_Q_keygen(
                                       nullptr, nullptr, "EC", "secp256k1")))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument)
      << "secp256k1 is not one of the NIST curves accepted";
  EXPECT_EQ(TlsKeySigner::FromPem("-----BEGIN CERTIFICATE-----\n").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mxkey
