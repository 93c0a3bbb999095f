// Every key and value of every table of a Store, as one string, so tests can
// prove that a rejected request changed nothing. Test-only; a read error is
// returned in the string, so the comparison fails visibly.
#ifndef MXKEY_KEYD_STORE_SNAPSHOT_H_
#define MXKEY_KEYD_STORE_SNAPSHOT_H_

#include <string>

#include "keyd/store.h"

namespace mxkey {

std::string StoreSnapshot(Store& store);

}  // namespace mxkey

#endif  // MXKEY_KEYD_STORE_SNAPSHOT_H_
