// Fuzzes the config file parser (toml++ and the checks behind it) with a
// command shaped like keyd serve. Invariants: it never throws or crashes,
// and whatever it accepts names only the command's own options, each with
// at least one value.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "base/config_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static CLI::App* app = [] {
    auto* a = new CLI::App("fuzz");
    static std::string text, duration, address;
    static int number = 0;
    static bool flag = false;
    static std::vector<std::string> list;
    a->add_option("--data-dir", text, "");
    a->add_option("--freshness", duration, "")->check(mxkey::DurationCheck());
    a->add_option("--listen", address, "")->check(mxkey::HostPortCheck());
    a->add_option("--limit", number, "")->check(CLI::Range(0, 1000));
    a->add_flag("--verbose", flag, "");
    a->add_option("--peer", list, "");
    return a;
  }();
  const std::string input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<CLI::ConfigItem>> items =
      mxkey::ParseTomlConfig(input, "fuzz.toml", *app, {});
  if (items.ok()) {
    for (const CLI::ConfigItem& item : *items) {
      if (app->get_option_no_throw("--" + item.name) == nullptr ||
          item.inputs.empty()) {
        abort();
      }
    }
  } else if (items.status().message().empty()) {
    abort();
  }
  return 0;
}
