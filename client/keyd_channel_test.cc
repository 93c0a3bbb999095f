#include "client/keyd_channel.h"

#include "base/status_macros.h"
#include "crypto/ed25519.h"
#include "crypto/sha256.h"
#include "crypto/x509_identity.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mxkey/v1/objects.pb.h"
#include "protocol/signed_object.h"

namespace mxkey {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1790000000);

// A keyd certificate whose binding the test can spoil in one way.
std::string Certificate(const Ed25519PrivateKey& signer,
                        const std::string& claimed_root, bool other_key = false,
                        int64_t valid_for = 3600) {
  auto identity = MakeTlsIdentity(
      [&](absl::string_view spki) -> absl::StatusOr<std::string> {
        mxkey::v1::KeydTlsKeyBody body;
        body.set_org("example");
        body.set_spki_sha256(Sha256(other_key ? std::string("x") : std::string(spki)));
        body.set_not_before(absl::ToUnixSeconds(kNow) - 60);
        body.set_not_after(absl::ToUnixSeconds(kNow) + valid_for);
        mxkey::v1::KeydTlsBinding binding;
        binding.set_root_public_key(claimed_root);
        ASSIGN_OR_RETURN(*binding.mutable_tls_key(),
                         SignObject(signer, ObjectType::kKeydTlsKey,
                                    body.SerializeAsString()));
        return binding.SerializeAsString();
      },
      kNow - absl::Minutes(1), kNow + absl::Hours(1));
  EXPECT_TRUE(identity.ok()) << identity.status();
  return identity.ok() ? identity->cert_pem : "";
}

TEST(KeydChannelTest, OnlyATlsKeyCertifiedByTheTrustedRootPasses) {
  Ed25519PrivateKey root = *Ed25519PrivateKey::Generate();
  Ed25519PrivateKey other = *Ed25519PrivateKey::Generate();
  const std::string fp = KeyFingerprint(root.public_key());
  std::string seen;
  EXPECT_TRUE(CheckKeydCertificate(Certificate(root, root.public_key()), fp,
                                   kNow, &seen).ok());
  EXPECT_EQ(seen, root.public_key());
  // Another org's genuine keyd.
  EXPECT_THAT(std::string(CheckKeydCertificate(
                  Certificate(other, other.public_key()), fp, kNow).message()),
              HasSubstr("not the trusted"));
  // Our root named, another key signing.
  EXPECT_EQ(CheckKeydCertificate(Certificate(other, root.public_key()), fp, kNow)
                .code(),
            absl::StatusCode::kUnauthenticated);
  // A genuine statement about another TLS key.
  EXPECT_THAT(std::string(CheckKeydCertificate(
                  Certificate(root, root.public_key(), true), fp, kNow).message()),
              HasSubstr("not the key its root certified"));
  // Past the statement's validity.
  EXPECT_THAT(std::string(CheckKeydCertificate(
                  Certificate(root, root.public_key(), false, 60), fp,
                  kNow + absl::Minutes(5)).message()),
              HasSubstr("outside its validity"));
  // A certificate without a binding (any Web PKI certificate).
  auto plain = MakeTlsIdentity(
      [](absl::string_view) -> absl::StatusOr<std::string> { return std::string(); },
      kNow, kNow + absl::Hours(1));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(CheckKeydCertificate(plain->cert_pem, fp, kNow).code(),
            absl::StatusCode::kUnauthenticated);
  // No fingerprint: any valid binding, and the root is reported.
  EXPECT_TRUE(CheckKeydCertificate(Certificate(other, other.public_key()), "",
                                   kNow, &seen).ok());
  EXPECT_EQ(seen, other.public_key());
}

TEST(KeydChannelTest, PlaintextOnlyForLocalEndpointsOrWhenAsked) {
  EXPECT_FALSE(UsesTls("127.0.0.1:7700", KeydTransport::kAuto));
  EXPECT_FALSE(UsesTls("[::1]:7700", KeydTransport::kAuto));
  EXPECT_FALSE(UsesTls("localhost:7700", KeydTransport::kAuto));
  EXPECT_FALSE(UsesTls("unix:/run/keyd.sock", KeydTransport::kTls));
  EXPECT_TRUE(UsesTls("keyd.example.org:7700", KeydTransport::kAuto));
  EXPECT_TRUE(UsesTls("192.0.2.1:7700", KeydTransport::kAuto));
  EXPECT_TRUE(UsesTls("127.0.0.1:7700", KeydTransport::kTls));
  EXPECT_FALSE(UsesTls("keyd.example.org:7700", KeydTransport::kPlaintext));
  EXPECT_EQ(ParseKeydTransport("maybe").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseKeydTransport("on"), KeydTransport::kTls);
}

}  // namespace
}  // namespace mxkey
