#include "keyd/change_tracking_store.h"

#include <vector>

#include "base/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "keyd/memory_store.h"
#include "keyd/records.h"
#include "keyd/records.pb.h"

namespace mxkey {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class ChangeTrackingStoreTest : public ::testing::Test {
 protected:
  ChangeTrackingStoreTest() {
    store_.AddListener(
        [this](const StoreChange& change) { changes_.push_back(change); });
  }

  // Runs one write and returns what it reported.
  StoreChange WriteOne(const std::function<absl::Status(WriteTxn&)>& fn) {
    changes_.clear();
    EXPECT_TRUE(store_.Write(fn).ok());
    EXPECT_EQ(changes_.size(), 1u);
    return changes_.empty() ? StoreChange() : changes_.back();
  }

  absl::Status PutHost(WriteTxn& txn, const std::string& host,
                       std::vector<std::string> domains) {
    keyd::HostRecord record;
    record.set_hostname(host);
    for (auto& d : domains) record.add_mail_domains(d);
    return txn.Put(Table::kHosts, host, record.SerializeAsString());
  }

  absl::Status PutCert(WriteTxn& txn, uint64_t serial, const std::string& host) {
    keyd::CertRecord record;
    record.set_hostname(host);
    return txn.Put(Table::kCerts, U64Key(serial), record.SerializeAsString());
  }

  MemoryStore inner_;
  ChangeTrackingStore store_{&inner_};
  std::vector<StoreChange> changes_;
};

TEST_F(ChangeTrackingStoreTest, WriteAsyncReportsTheChangeBeforeTheResult) {
  int results = 0;
  size_t changes_at_result = 0;
  store_.WriteAsync(
      [&](WriteTxn& txn) { return PutHost(txn, "mx1.a.example", {"a.example"}); },
      [&](absl::Status st) {
        EXPECT_TRUE(st.ok()) << st;
        ++results;
        changes_at_result = changes_.size();
      });
  EXPECT_EQ(results, 1);  // MemoryStore completes on the caller's thread
  EXPECT_EQ(changes_at_result, 1u);
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_THAT(changes_[0].hosts, ElementsAre("mx1.a.example"));
  EXPECT_EQ(changes_[0].generation, inner_.generation());
  // A failed write reports its error and no change.
  changes_.clear();
  store_.WriteAsync(
      [](WriteTxn&) { return absl::InvalidArgumentError("rejected"); },
      [&](absl::Status st) {
        EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
        ++results;
      });
  EXPECT_EQ(results, 2);
  EXPECT_THAT(changes_, IsEmpty());
}

TEST_F(ChangeTrackingStoreTest, HostWriteNamesTheHostAndItsOldAndNewDomains) {
  WriteOne([&](WriteTxn& txn) { return PutHost(txn, "mx1.a.example", {"a.example"}); });
  StoreChange change = WriteOne([&](WriteTxn& txn) {
    return PutHost(txn, "mx1.a.example", {"b.example"});
  });
  EXPECT_THAT(change.hosts, ElementsAre("mx1.a.example"));
  EXPECT_THAT(change.domains, ElementsAre("a.example", "b.example"));
  EXPECT_FALSE(change.everything);
  EXPECT_EQ(change.generation, inner_.generation());
}

TEST_F(ChangeTrackingStoreTest, DeletedHostNamesItsDomains) {
  WriteOne([&](WriteTxn& txn) { return PutHost(txn, "mx1.a.example", {"a.example"}); });
  StoreChange change = WriteOne(
      [&](WriteTxn& txn) { return txn.Delete(Table::kHosts, "mx1.a.example"); });
  EXPECT_THAT(change.hosts, ElementsAre("mx1.a.example"));
  EXPECT_THAT(change.domains, ElementsAre("a.example"));
}

TEST_F(ChangeTrackingStoreTest, CertificateAndRevocationNameTheirHost) {
  WriteOne([&](WriteTxn& txn) {
    RETURN_IF_ERROR(PutHost(txn, "mx1.a.example", {"a.example"}));
    return PutCert(txn, 7, "mx1.a.example");
  });
  StoreChange change = WriteOne([&](WriteTxn& txn) {
    return txn.Put(Table::kRevocations, U64Key(7), "event");
  });
  EXPECT_THAT(change.hosts, ElementsAre("mx1.a.example"));
  EXPECT_THAT(change.domains, ElementsAre("a.example"));
  change = WriteOne([&](WriteTxn& txn) { return PutCert(txn, 7, "mx1.a.example"); });
  EXPECT_THAT(change.hosts, ElementsAre("mx1.a.example"));
}

TEST_F(ChangeTrackingStoreTest, PoliciesAndDomainListsNameTheDomain) {
  StoreChange change = WriteOne([&](WriteTxn& txn) {
    RETURN_IF_ERROR(txn.Put(Table::kPolicies, "a.example", "policy"));
    return txn.Put(Table::kDomainHosts, DomainHostKey("b.example", "mx9.b.example"),
                   "");
  });
  EXPECT_THAT(change.domains, ElementsAre("a.example", "b.example"));
  EXPECT_THAT(change.hosts, ElementsAre("mx9.b.example"));
}

TEST_F(ChangeTrackingStoreTest, WritesOutsideAnswersReportNothingButTheirGeneration) {
  StoreChange change = WriteOne([&](WriteTxn& txn) {
    RETURN_IF_ERROR(txn.Put(Table::kTokens, "t", "x"));
    RETURN_IF_ERROR(txn.Put(Table::kFeed, U64Key(1), "e"));
    RETURN_IF_ERROR(txn.Put(Table::kMeta, "feed_head", U64Key(1)));
    return txn.Put(Table::kPins, "p", "mx1.a.example");
  });
  EXPECT_THAT(change.hosts, IsEmpty());
  EXPECT_THAT(change.domains, IsEmpty());
  EXPECT_FALSE(change.everything);
  EXPECT_FALSE(change.peers);
  EXPECT_EQ(change.generation, inner_.generation());
}

TEST_F(ChangeTrackingStoreTest, UnreadableRecordMeansEverything) {
  StoreChange change = WriteOne([&](WriteTxn& txn) {
    return txn.Put(Table::kRevocations, U64Key(99), "event of no certificate");
  });
  EXPECT_TRUE(change.everything);
  change = WriteOne([&](WriteTxn& txn) {
    return txn.Put(Table::kDomainHosts, "no separator", "");
  });
  EXPECT_TRUE(change.everything);
}

TEST_F(ChangeTrackingStoreTest, PeersAreReported) {
  StoreChange change =
      WriteOne([&](WriteTxn& txn) { return txn.Put(Table::kPeers, "b", "peer"); });
  EXPECT_TRUE(change.peers);
}

TEST_F(ChangeTrackingStoreTest, FailedWriteReportsNothing) {
  changes_.clear();
  absl::Status st = store_.Write([&](WriteTxn& txn) -> absl::Status {
    RETURN_IF_ERROR(PutHost(txn, "mx1.a.example", {"a.example"}));
    return absl::InvalidArgumentError("no");
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(changes_, IsEmpty());
}

}  // namespace
}  // namespace mxkey
