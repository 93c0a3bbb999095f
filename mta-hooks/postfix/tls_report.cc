#include "mta-hooks/postfix/tls_report.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/json_writer.h"
#include "base/log.h"
#include "base/time_format.h"

namespace mxkey {

std::string TlsReportWriter::CurrentPath() const {
  if (dir_.empty()) return "";
  return absl::StrCat(dir_, "/mxkey-tlsrpt-",
                      absl::FormatTime("%Y-%m-%d", clock_->Now(),
                                       absl::UTCTimeZone()),
                      ".jsonl");
}

void TlsReportWriter::Write(const TlsReportRecord& r) {
  LogWarning("testing mode: enforce would refuse %s (mx %s): %s: %s",
             r.policy_domain, r.receiving_mx.empty() ? "-" : r.receiving_mx,
             r.result_type, r.detail);
  if (dir_.empty()) return;
  const std::string line =
      JsonObject()
          .Str("time", FormatUnixTime(absl::ToUnixSeconds(clock_->Now())))
          .Str("policy-type", "mxkey")
          .Str("policy-mode", "testing")
          .Str("policy-domain", r.policy_domain)
          .Str("receiving-mx-hostname", r.receiving_mx)
          .Str("result-type", r.result_type)
          .Str("failure-reason-code", r.detail)
          .Build() +
      "\n";
  const std::string path = CurrentPath();
  std::lock_guard<std::mutex> lock(mu_);
  // O_APPEND keeps each line whole even with another writer on the file.
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    LogWarning("tls report %s: %s", path, std::strerror(errno));
    return;
  }
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    LogWarning("tls report %s: short write: %s", path, std::strerror(errno));
  }
  close(fd);
}

}  // namespace mxkey
