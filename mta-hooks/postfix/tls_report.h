// Report records for domains in testing mode: one JSON line per event that
// enforce mode would have refused, in the spirit of TLS-RPT (RFC 8460: its
// policy and result-type vocabulary), one file per UTC day:
// <dir>/mxkey-tlsrpt-YYYY-MM-DD.jsonl (mode 0640).
//
// Writing is best effort: a failure is logged, never passed to the MTA,
// because a testing-mode domain must not be affected by its reports.
#ifndef MXKEY_MTA_HOOKS_POSTFIX_TLS_REPORT_H_
#define MXKEY_MTA_HOOKS_POSTFIX_TLS_REPORT_H_

#include <mutex>
#include <string>

#include "base/clock.h"

namespace mxkey {

struct TlsReportRecord {
  std::string policy_domain;   // the next-hop's domain or host
  std::string receiving_mx;    // the MX host, when known
  std::string result_type;     // RFC 8460 §4.3, e.g. "validation-failure"
  std::string detail;          // what enforce would have said
};

class TlsReportWriter {
 public:
  // An empty `dir` writes nothing (log lines only).
  TlsReportWriter(std::string dir, Clock* clock)
      : dir_(std::move(dir)), clock_(clock) {}

  void Write(const TlsReportRecord& record);
  // The file today's records go to (empty without a directory).
  std::string CurrentPath() const;

 private:
  const std::string dir_;
  Clock* const clock_;
  std::mutex mu_;
};

}  // namespace mxkey

#endif  // MXKEY_MTA_HOOKS_POSTFIX_TLS_REPORT_H_
