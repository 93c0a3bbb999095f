// The contract suite every Store backend must pass. A backend's test
// instantiates it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Lmdb, StoreContractTest,
//                            ::testing::Values(&MakeLmdbStore));
//
// A factory opens the store on `dir`; reopening the same `dir` must show
// every durable write (backends that are not durable return nullptr for a
// second open, and the durability cases skip).
#ifndef MXKEY_KEYD_STORE_CONTRACT_TEST_H_
#define MXKEY_KEYD_STORE_CONTRACT_TEST_H_

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "keyd/store.h"

namespace mxkey {

struct StoreFactory {
  std::string name;
  bool durable;
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

}  // namespace mxkey

#endif  // MXKEY_KEYD_STORE_CONTRACT_TEST_H_
