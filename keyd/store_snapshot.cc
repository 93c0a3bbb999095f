#include "keyd/store_snapshot.h"

#include "absl/strings/str_cat.h"

namespace mxkey {

std::string StoreSnapshot(Store& store) {
  std::string out;
  absl::Status st = store.Read([&](ReadTxn& txn) {
    for (int t = 0; t < kTableCount; ++t) {
      absl::Status scan = txn.Scan(
          static_cast<Table>(t), "",
          [&](absl::string_view k, absl::string_view v) {
            absl::StrAppend(&out, t, "|", k.size(), ":", k, "|", v.size(), ":",
                            v, "\n");
            return true;
          });
      if (!scan.ok()) return scan;
    }
    return absl::OkStatus();
  });
  if (!st.ok()) absl::StrAppend(&out, "read error: ", st.ToString());
  return out;
}

}  // namespace mxkey
