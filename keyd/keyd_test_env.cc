#include "keyd/keyd_test_env.h"

#include "keyd/store_snapshot.h"

#include <stdlib.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "protocol/signed_object.h"

namespace mxkey {

KeydTestEnv::KeydTestEnv() : clock(absl::FromUnixSeconds(1790000000)) {
  std::string tmpl = absl::StrCat(
      getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp", "/org.XXXXXX");
  dir = mkdtemp(&tmpl[0]);
  OrgKeysOptions options;
  options.scrypt.log2_n = 4;
  SecretBytes pass(absl::string_view("test passphrase"));
  absl::Status st = OrgKeys::Init(dir, "example", pass, options, &clock);
  EXPECT_TRUE(st.ok()) << st;
  keys = *OrgKeys::Load(dir, pass, options, &clock);
  ctx = KeydContext{&tracked, keys.get(), &clock, &feed, KeydOptions{},
                   &metrics};
  ctx.options.freshness = absl::Seconds(60);
  admin = std::make_unique<HostAdmin>(&ctx);
  issuer = std::make_unique<Issuer>(&ctx);
  directory = std::make_unique<Directory>(&ctx);
  tracked.AddListener(
      [this](const StoreChange& change) { directory->Invalidate(change); });
}

std::string KeydTestEnv::AddHost(const std::string& host,
                                 const std::string& domain) {
  mxkey::v1::AddHostRequest req;
  req.set_hostname(host);
  req.add_mail_domains(domain);
  absl::StatusOr<mxkey::v1::TokenResponse> token = admin->AddHost(req);
  EXPECT_TRUE(token.ok()) << token.status();
  return token.ok() ? token->token() : "";
}

absl::StatusOr<EnrolledHost> KeydTestEnv::Enroll(
    const std::string& host, const std::string& token,
    const std::vector<std::string>& pins) {
  absl::StatusOr<Ed25519PrivateKey> token_key = TokenKey(token);
  if (!token_key.ok()) return token_key.status();
  absl::StatusOr<HostKeys> keys = HostKeys::Generate();
  if (!keys.ok()) return keys.status();
  const SplitPins split = SplitTestPins(pins);
  absl::StatusOr<mxkey::v1::EnrollRequest> req = MakeEnrollRequest(
      host, *token_key, *keys, split.plain, clock.Now(), split.proven);
  if (!req.ok()) return req.status();
  absl::StatusOr<mxkey::v1::EnrollResponse> resp = issuer->Enroll(*req);
  if (!resp.ok()) return resp.status();
  auto body = ParseBody<mxkey::v1::HostCertificateBody>(resp->certificate());
  if (!body.ok()) return body.status();
  return EnrolledHost{*std::move(keys), *std::move(resp), *std::move(body)};
}

EnrolledHost KeydTestEnv::AddAndEnroll(const std::string& host,
                                       const std::vector<std::string>& pins,
                                       const std::string& domain) {
  absl::StatusOr<EnrolledHost> enrolled =
      Enroll(host, AddHost(host, domain), pins);
  EXPECT_TRUE(enrolled.ok()) << enrolled.status();
  return *std::move(enrolled);
}

absl::StatusOr<EnrolledHost> KeydTestEnv::Rotate(
    const EnrolledHost& current, const std::vector<std::string>& pins,
    absl::Duration overlap) {
  absl::StatusOr<HostKeys> next = HostKeys::Generate();
  if (!next.ok()) return next.status();
  const SplitPins split = SplitTestPins(pins);
  absl::StatusOr<mxkey::v1::RotateRequest> req = MakeRotateRequest(
      current.body.hostname(), current.body.serial(), current.keys.identity,
      *next, split.plain, clock.Now(), overlap, split.proven);
  if (!req.ok()) return req.status();
  absl::StatusOr<mxkey::v1::EnrollResponse> resp = issuer->Rotate(*req);
  if (!resp.ok()) return resp.status();
  auto body = ParseBody<mxkey::v1::HostCertificateBody>(resp->certificate());
  if (!body.ok()) return body.status();
  return EnrolledHost{*std::move(next), *std::move(resp), *std::move(body)};
}

absl::StatusOr<mxkey::v1::EnrollResponse> KeydTestEnv::FinishRotation(
    const EnrolledHost& next, const Ed25519PrivateKey* signer) {
  absl::StatusOr<mxkey::v1::FinishRotationRequest> req =
      MakeFinishRotationRequest(next.body.hostname(), next.body.serial(),
                                signer ? *signer : next.keys.identity,
                                clock.Now());
  if (!req.ok()) return req.status();
  return issuer->FinishRotation(*req);
}

AnswerVerifier KeydTestEnv::Verifier() const {
  return *AnswerVerifier::Create(keys->root_fingerprint(),
                                 keys->root_public_key());
}

std::string KeydTestEnv::Snapshot() { return StoreSnapshot(store); }

}  // namespace mxkey
