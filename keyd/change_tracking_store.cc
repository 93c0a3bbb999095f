#include "keyd/change_tracking_store.h"

#include "keyd/records.h"
#include "keyd/records.pb.h"

namespace mxkey {
namespace {

// Forwards to the real transaction and records what answers each put or
// delete touches. Reads inside it see the transaction's own writes.
class TrackingTxn : public WriteTxn {
 public:
  TrackingTxn(WriteTxn& inner, StoreChange& change)
      : inner_(inner), change_(change) {}

  absl::StatusOr<absl::string_view> Get(Table table,
                                        absl::string_view key) override {
    return inner_.Get(table, key);
  }
  absl::Status Scan(Table table, absl::string_view start,
                    const std::function<bool(absl::string_view,
                                             absl::string_view)>& fn) override {
    return inner_.Scan(table, start, fn);
  }
  absl::Status Put(Table table, absl::string_view key,
                   absl::string_view value) override {
    Touch(table, key, value);
    return inner_.Put(table, key, value);
  }
  absl::Status Delete(Table table, absl::string_view key) override {
    Touch(table, key, absl::string_view());
    return inner_.Delete(table, key);
  }

  // Adds the mail domains of every touched host, as stored after the
  // write (the domains before it were added as the host was touched).
  void Finish() {
    for (const std::string& host : change_.hosts) AddDomainsOf(host);
  }

 private:
  void AddDomainsOf(absl::string_view host) {
    absl::StatusOr<absl::string_view> raw = inner_.Get(Table::kHosts, host);
    if (!raw.ok()) return;
    keyd::HostRecord record;
    if (!record.ParseFromArray(raw->data(), static_cast<int>(raw->size()))) {
      change_.everything = true;
      return;
    }
    for (const auto& d : record.mail_domains()) change_.domains.insert(d);
  }

  void AddHostOfSerial(absl::string_view serial_key) {
    absl::StatusOr<absl::string_view> raw = inner_.Get(Table::kCerts, serial_key);
    keyd::CertRecord record;
    if (!raw.ok() ||
        !record.ParseFromArray(raw->data(), static_cast<int>(raw->size()))) {
      change_.everything = true;
      return;
    }
    change_.hosts.insert(record.hostname());
  }

  void Touch(Table table, absl::string_view key, absl::string_view value) {
    switch (table) {
      case Table::kHosts:
        // Before the write: a host leaving a domain changes that domain.
        AddDomainsOf(key);
        change_.hosts.insert(std::string(key));
        return;
      case Table::kCerts: {
        keyd::CertRecord record;
        if (!value.empty() && record.ParseFromArray(
                                  value.data(), static_cast<int>(value.size()))) {
          change_.hosts.insert(record.hostname());
        } else {
          AddHostOfSerial(key);
        }
        return;
      }
      case Table::kRevocations:
        AddHostOfSerial(key);
        return;
      case Table::kPolicies:
        change_.domains.insert(std::string(key));
        return;
      case Table::kDomainHosts: {
        const size_t nul = key.find('\0');
        if (nul == absl::string_view::npos) {
          change_.everything = true;
          return;
        }
        change_.domains.insert(std::string(key.substr(0, nul)));
        change_.hosts.insert(std::string(key.substr(nul + 1)));
        return;
      }
      case Table::kPeers:
        change_.peers = true;
        return;
      case Table::kMeta:
        // Every freshness statement binds the bundle version.
        if (key == kBundleVersionCounter) change_.peers = true;
        return;
      // Not part of any answer: claims, the feed (answers bind its head
      // only as of their freshness statement), tokens and counters.
      case Table::kPins:
      case Table::kKeys:
      case Table::kFeed:
      case Table::kTokens:
        return;
    }
    change_.everything = true;
  }

  WriteTxn& inner_;
  StoreChange& change_;
};

}  // namespace

std::function<absl::Status(WriteTxn&)> ChangeTrackingStore::Tracked(
    std::function<absl::Status(WriteTxn&)> fn) {
  return [this, fn = std::move(fn)](WriteTxn& txn) -> absl::Status {
    // A backend may run `fn` again (after a shared commit failed): each run
    // reports afresh.
    StoreChange change;
    TrackingTxn tracking(txn, change);
    absl::Status result = fn(tracking);
    if (!result.ok()) return result;
    tracking.Finish();
    Report(change);
    return result;
  };
}

void ChangeTrackingStore::Report(StoreChange& change) {
  // Inside the write, before its commit: the generation it will become
  // visible at is the next one (writes of one commit share it). Reported
  // even when empty: listeners learn that the generation holds no change
  // they care about.
  change.generation = inner_->generation() + 1;
  for (const Listener& listener : listeners_) listener(change);
}

absl::Status ChangeTrackingStore::Write(
    std::function<absl::Status(WriteTxn&)> fn) {
  if (listeners_.empty()) return inner_->Write(std::move(fn));
  return inner_->Write(Tracked(std::move(fn)));
}

void ChangeTrackingStore::WriteAsync(std::function<absl::Status(WriteTxn&)> fn,
                                     std::function<void(absl::Status)> done) {
  if (listeners_.empty()) {
    return inner_->WriteAsync(std::move(fn), std::move(done));
  }
  inner_->WriteAsync(Tracked(std::move(fn)), std::move(done));
}

}  // namespace mxkey
