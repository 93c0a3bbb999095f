// Host registration, one-time tokens and domain policies (the Admin
// service's state changes, apart from revocation).
//
// Tokens are random 32-byte Ed25519 seeds; only their public key is stored,
// bound to one hostname with an expiry, and a new token replaces the old.
// Errors: INVALID_ARGUMENT for bad names or modes, ALREADY_EXISTS for a
// duplicate host, NOT_FOUND for an unknown host.
#ifndef MXKEY_KEYD_HOST_ADMIN_H_
#define MXKEY_KEYD_HOST_ADMIN_H_

#include "absl/status/statusor.h"
#include "keyd/keyd_context.h"
#include "proto/mxkey/v1/mxkey.pb.h"

namespace mxkey {

class HostAdmin {
 public:
  explicit HostAdmin(const KeydContext* ctx) : ctx_(ctx) {}

  absl::StatusOr<mxkey::v1::TokenResponse> AddHost(
      const mxkey::v1::AddHostRequest& request);
  absl::StatusOr<mxkey::v1::TokenResponse> CreateToken(
      const mxkey::v1::CreateEnrollmentTokenRequest& request);
  // Revokes the host's unrevoked certificates, then forgets the host.
  absl::StatusOr<mxkey::v1::RemoveHostResponse> RemoveHost(
      const mxkey::v1::RemoveHostRequest& request);
  absl::StatusOr<mxkey::v1::ListHostsResponse> ListHosts();
  absl::StatusOr<mxkey::v1::SetDomainPolicyResponse> SetDomainPolicy(
      const mxkey::v1::SetDomainPolicyRequest& request);

 private:
  const KeydContext* ctx_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_HOST_ADMIN_H_
