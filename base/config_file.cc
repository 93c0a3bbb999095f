#include "base/config_file.h"

#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

// Errors as values: the parser is a boundary, and a toml++ exception must
// not cross it. Only this file includes toml++.
#define TOML_EXCEPTIONS 0
// toml++ 3.3 (Debian 12) asserts that a table header's key starts with a
// key character before it checks, and reports the error itself right after
// ("[@x]" aborted a debug build; base:config_file_fuzzer). Its asserts are
// assumptions about valid input, which a config file is not: keep its
// error path, drop the abort. (Under NDEBUG with GCC they are no-ops too.)
#define TOML_ASSERT(expr) static_cast<void>(0)
#include "toml++/toml.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "base/duration_flag.h"

namespace mxkey {
namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;

std::string Where(absl::string_view source, const toml::source_region& at) {
  return absl::StrCat(source, ":", at.begin.line, ":", at.begin.column);
}

// A check's message may quote the value; keep it on one line.
std::string EscapeControls(absl::string_view text) {
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(byte, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Options a file may not set: they are about the command line itself.
bool Configurable(const CLI::Option& option) {
  if (!option.get_configurable() || option.get_lnames().empty()) return false;
  const std::string& name = option.get_lnames().front();
  return name != "help" && name != "config" && name != "version" &&
         name != "check-config";
}

std::string KnownKeys(CLI::App& target) {
  std::vector<std::string> names;
  for (const CLI::Option* option : target.get_options()) {
    if (Configurable(*option)) names.push_back(option->get_lnames().front());
  }
  return absl::StrJoin(names, ", ");
}

// Every check attached to `option`, run on `value` as CLI11 would.
std::string RunChecks(CLI::Option& option, std::string value) {
  for (int i = 0;; ++i) {
    CLI::Validator* check = nullptr;
    try {
      check = option.get_validator(i);
    } catch (const CLI::OptionNotFound&) {
      return "";
    }
    std::string error = (*check)(value);
    if (!error.empty()) return error;
  }
}

// One scalar as the text CLI11 would have seen on the command line, or an
// error naming the expected type.
absl::StatusOr<std::string> Scalar(const toml::node& node, bool want_integer) {
  if (want_integer) {
    if (const auto* integer = node.as_integer()) {
      return absl::StrCat(integer->get());
    }
    return absl::InvalidArgumentError("expected an integer");
  }
  if (const auto* text = node.as_string()) return text->get();
  return absl::InvalidArgumentError("expected a string in double quotes");
}

class TomlConfig : public CLI::Config {
 public:
  TomlConfig(CLI::App* root, std::string default_path,
             std::vector<CLI::App*> targets)
      : root_(root),
        default_path_(std::move(default_path)),
        targets_(std::move(targets)) {}

  std::string to_config(const CLI::App*, bool, bool,
                        std::string) const override {
    return "";
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::string text;
    text.resize(kMaxConfigBytes + 1);
    input.read(&text[0], static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(input.gcount()));
    // One byte past the limit is read, so ParseTomlConfig sees an oversized
    // file as one and refuses it.
    const std::string source = Path();
    CLI::App* target = nullptr;
    for (CLI::App* candidate : targets_) {
      if (candidate == root_ || candidate->parsed()) target = candidate;
    }
    if (target == nullptr) return {};  // a command that reads no config
    std::vector<std::string> parents;
    if (target != root_) parents.push_back(target->get_name());
    absl::StatusOr<std::vector<CLI::ConfigItem>> items =
        ParseTomlConfig(text, source, *target, parents);
    if (!items.ok()) throw CLI::ConfigError(std::string(items.status().message()));
    return *std::move(items);
  }

 private:
  std::string Path() const {
    const CLI::Option* config = root_->get_config_ptr();
    if (config != nullptr && config->count() > 0) {
      return config->results().front();
    }
    return default_path_;
  }

  CLI::App* root_;
  std::string default_path_;
  std::vector<CLI::App*> targets_;
};

}  // namespace

absl::StatusOr<std::vector<CLI::ConfigItem>> ParseTomlConfig(
    absl::string_view text, absl::string_view source, CLI::App& target,
    const std::vector<std::string>& parents) {
  if (text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": larger than ", kMaxConfigBytes, " bytes"));
  }
  // Config files are printable ASCII (plus tab and line ends). TOML allows
  // no control characters anyway, and toml++ 3.3's handling of some
  // non-ASCII characters reaches a __builtin_unreachable (U+FE36..U+FEFE
  // where whitespace may stand; base:config_file_fuzzer): undefined
  // behaviour in any build. Every setting is ASCII; a file that is not is
  // refused here with the position, before toml++ sees it.
  int line = 1, column = 1;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t' && c != '\n' && c != '\r') || byte >= 0x7f) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s:%d:%d: %s 0x%02x (config files are ASCII)", source, line,
          column, byte >= 0x80 ? "non-ASCII byte" : "control character",
          byte));
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  toml::parse_result parsed = toml::parse(std::string_view(text.data(), text.size()),
                  std::string(source));
  if (!parsed) {
    const toml::parse_error& error = parsed.error();
    return absl::InvalidArgumentError(
        absl::StrCat(Where(source, error.source()), ": not valid TOML: ",
                     std::string(error.description())));
  }
  std::vector<CLI::ConfigItem> items;
  for (auto&& [key, node] : parsed.table()) {
    const std::string name(key.str());
    const std::string at = Where(source, key.source());
    const std::string shown = absl::CHexEscape(name);
    CLI::Option* option = target.get_option_no_throw("--" + name);
    if (option == nullptr || !Configurable(*option) ||
        option->get_lnames().front() != name) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ": unknown key \"", shown, "\" (known: ",
                       KnownKeys(target), ")"));
    }
    CLI::ConfigItem item;
    item.parents = parents;
    item.name = name;
    const bool is_flag = option->get_expected_min() == 0;
    // CLI11 names an int option "INT" (or "UINT"), followed by what its
    // checks add ("INT:INT in [0 - 1000]").
    const std::string type = option->get_type_name();
    const bool want_integer =
        absl::StartsWith(type, "INT") || absl::StartsWith(type, "UINT");
    const bool repeatable = option->get_items_expected_max() > 1 ||
                            option->get_multi_option_policy() ==
                                CLI::MultiOptionPolicy::TakeAll;
    const std::string value_at = Where(source, node.source());
    if (is_flag) {
      const auto* flag = node.as_boolean();
      if (flag == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            value_at, ": ", shown, ": expected true or false"));
      }
      item.inputs.push_back(flag->get() ? "true" : "false");
    } else if (const auto* list = node.as_array(); list != nullptr) {
      if (!repeatable) {
        return absl::InvalidArgumentError(absl::StrCat(
            value_at, ": ", shown, ": takes one value, not a list"));
      }
      for (const toml::node& element : *list) {
        absl::StatusOr<std::string> value = Scalar(element, want_integer);
        if (!value.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat(Where(source, element.source()), ": ", shown, ": ",
                           value.status().message(), " in the list"));
        }
        item.inputs.push_back(*std::move(value));
      }
      if (item.inputs.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(value_at, ": ", shown, ": an empty list"));
      }
    } else {
      absl::StatusOr<std::string> value = Scalar(node, want_integer);
      if (!value.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            value_at, ": ", shown, ": ", value.status().message(),
            node.is_table() ? " (this file has no [sections])" : ""));
      }
      item.inputs.push_back(*std::move(value));
    }
    for (const std::string& input : item.inputs) {
      std::string error = RunChecks(*option, input);
      if (!error.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            value_at, ": ", shown, ": ", EscapeControls(error)));
      }
    }
    items.push_back(std::move(item));
  }
  return items;
}

void AddConfigFile(CLI::App& root, const std::string& default_path,
                   std::vector<CLI::App*> targets) {
  root.set_config("--config", default_path,
                  absl::StrCat("TOML config file; its keys are the long flag "
                               "names, flags override it (default ",
                               default_path, ", skipped when missing)"));
  root.config_formatter(
      std::make_shared<TomlConfig>(&root, default_path, std::move(targets)));
  root.allow_config_extras(CLI::config_extras_mode::error);
}

int ParseCommandLine(CLI::App& root, int argc, char** argv) {
  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return root.exit(e);
  }
  return -1;
}

std::string ConfigSource(const CLI::App& root) {
  const CLI::Option* config = root.get_config_ptr();
  if (config != nullptr && config->count() > 0) return config->results().front();
  return "flags only; no config file";
}

CLI::Validator DurationCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        absl::StatusOr<absl::Duration> d = ParseDurationFlag(text, "");
        if (d.ok()) return "";
        return absl::StrCat("expected a positive duration like 30s, 5m, 1h "
                            "or 7d, got \"",
                            absl::CHexEscape(text), "\"");
      },
      "DURATION");
}

CLI::Validator HostPortCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const size_t colon = text.rfind(':');
        bool ok = colon != std::string::npos && colon > 0;
        std::string host = ok ? text.substr(0, colon) : "";
        uint32_t port = 0;
        ok = ok && absl::SimpleAtoi(text.substr(colon + 1), &port) &&
             port <= 65535 && text.find_first_of(" \t\r\n/") == std::string::npos;
        if (ok && host.front() == '[') {
          ok = host.size() > 2 && host.back() == ']';
        } else if (ok) {
          ok = host.find(':') == std::string::npos;
        }
        if (ok) return "";
        return absl::StrCat("expected HOST:PORT such as 127.0.0.1:7700 or "
                            "[::1]:7700, got \"",
                            absl::CHexEscape(text), "\"");
      },
      "HOST:PORT");
}

}  // namespace mxkey
