// The contract suite every Store backend must pass. A backend's test
// instantiates it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Lmdb, StoreContractTest,
//                            ::testing::Values(&MakeLmdbStore));
//
// A factory opens the store on `dir`. Durable backends also instantiate
// DurableStoreContractTest: reopening the same `dir` must show every
// acknowledged write.
#ifndef MXKEY_KEYD_STORE_CONTRACT_TEST_H_
#define MXKEY_KEYD_STORE_CONTRACT_TEST_H_

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "keyd/store.h"

namespace mxkey {

struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<Store>(const std::string& dir)> open;
};

class StoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::unique_ptr<Store> Reopen();

  std::string dir_;
  std::unique_ptr<Store> store_;
};

// The durability half of the contract, for backends that persist: a
// durable backend instantiates this suite too.
class DurableStoreContractTest : public StoreContractTest {};

}  // namespace mxkey

#endif  // MXKEY_KEYD_STORE_CONTRACT_TEST_H_
