// Conversions between absl::Status and grpc::Status, used only at the edges
// (service handlers and client stubs). Codes map one to one.
#ifndef MXKEY_BASE_GRPC_STATUS_H_
#define MXKEY_BASE_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace mxkey {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace mxkey

#endif  // MXKEY_BASE_GRPC_STATUS_H_
