// keyd's TLS identity on disk: DIR/tls.pem holds the private key and the
// certificate together (mode 0600), so one atomic rename replaces both and
// gRPC's file watcher never reads a key with another key's certificate.
// The certificate carries the org root's signed statement of the TLS key
// (client/keyd_channel.h). Refresh() makes a new key and certificate when
// the file is missing, unreadable, bound to another root, or past half its
// validity; keyd calls it at start and from its renewal loop, so the TLS
// identity never expires unattended. Errors: what writing the file or
// signing returned.
#ifndef MXKEY_KEYD_TLS_FILES_H_
#define MXKEY_KEYD_TLS_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "keyd/org_keys.h"

namespace mxkey {

class KeydTlsFiles {
 public:
  static constexpr absl::Duration kValidity = absl::Hours(24 * 30);

  KeydTlsFiles(const std::string& data_dir, const OrgKeys* keys, Clock* clock)
      : path_(data_dir + "/tls.pem"), keys_(keys), clock_(clock) {}

  absl::Status Refresh();
  const std::string& path() const { return path_; }

 private:
  // True if the file holds an identity of this root with more than half
  // its validity left.
  bool Current() const;

  const std::string path_;
  const OrgKeys* const keys_;
  Clock* const clock_;
};

}  // namespace mxkey

#endif  // MXKEY_KEYD_TLS_FILES_H_
