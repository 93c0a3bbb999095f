#include "keyd/memory_store.h"

#include "keyd/store_contract_test.h"

namespace mxkey {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Memory, StoreContractTest,
    ::testing::Values(StoreFactory{"memory", [](const std::string&) {
                                     return std::unique_ptr<Store>(
                                         new MemoryStore());
                                   }}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace mxkey
