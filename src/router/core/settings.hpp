// The table of `eta route`'s settings: one row per setting, with its YAML path, its flag, its type
// and range, its help text and whether a reload (SIGHUP) applies it or it needs a restart. The
// table drives the YAML reader (core/config.cpp), the command line (app/cmd_route.cpp) and the
// flag overlay (apply_flags), the reload diff (keep_restart_only, core/reload_plan.hpp) and the
// generated reference docs/settings.md (a unit test fails when the two differ). Pure.
//
// Scalar rows point into RouterConfig (a function returning a reference to the field); lists and
// maps with a schema of their own (replicas, api_keys, model aliases, replica_dns, policy
// params) are parsed by hand in config.cpp but still have a row, so that the docs and the reload
// diff know them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace eta::router {

struct RouterConfig;

enum class SettingType : uint8_t { kString, kBool, kInt, kNumber, kList, kMap };
enum class Reload : uint8_t { kLive, kRestart };

// A scalar field of RouterConfig; std::monostate for lists and maps.
using SettingField =
    std::variant<std::monostate, std::string& (*)(RouterConfig&), bool& (*)(RouterConfig&),
                 int& (*)(RouterConfig&), uint64_t& (*)(RouterConfig&), double& (*)(RouterConfig&)>;

struct Setting {
  std::string_view path;  // YAML path: "retries", "scrape.interval_s"
  std::string_view flag;  // CLI11 names ("--scrape-interval-s"; "--a,--b": aliases); "" = none
  SettingType type = SettingType::kString;
  double min = 0;  // kInt, kNumber: the inclusive range
  double max = 0;
  Reload reload = Reload::kLive;
  std::string_view help;
  SettingField field;  // scalar rows
  // Lists and maps that need a restart: equality and copy for the reload diff.
  bool (*same)(const RouterConfig&, const RouterConfig&) = nullptr;
  void (*copy)(const RouterConfig& from, RouterConfig& to) = nullptr;
  bool by_hand = false;  // read by hand in config.cpp (the row documents and reloads it)
};

// Every setting, in the order of docs/settings.md (the YAML file's sections).
std::span<const Setting> settings();
// The row of a YAML path; nullptr if none.
const Setting* find_setting(std::string_view path);
// "scrape" for "scrape.interval_s", "" for a top-level setting.
std::string_view setting_section(const Setting& s);
// "interval_s" for "scrape.interval_s", "retries" for "retries".
std::string_view setting_key(const Setting& s);
// The first flag name ("--shutdown-grace-s" for "--shutdown-grace-s,--shutdown-grace"); "".
std::string_view setting_flag(const Setting& s);

// Sets a scalar setting from text (a YAML scalar or a flag's value), checking its type and
// range. `name` is what messages call it (the YAML path or the flag). False with one line:
// "NAME must be a number, got 'x'", "NAME must be in [MIN, MAX], got V", "NAME must be an
// integer", "NAME must be true or false".
bool set_setting(const Setting& s, std::string_view text, std::string_view name,
                 RouterConfig& config, std::string& error);
// The number part of set_setting: parses `text` into `v` and checks the range of `s` (and, for
// kInt, that the value is whole). Also used for the numbers of hand-read lists.
bool check_number(const Setting& s, std::string_view text, std::string_view name, double& v,
                  std::string& error);
// Whether a number or integer setting of `config` is in its range; false with "PATH must be in
// [MIN, MAX], got V". True for the other types.
bool setting_in_range(const Setting& s, const RouterConfig& config, std::string& error);
// A scalar setting's value as text ("0.05", "true", "eta"); "" for lists and maps.
std::string setting_value(const Setting& s, const RouterConfig& config);
// "[0.001, 3600]" for numbers and integers, "" otherwise.
std::string setting_range(const Setting& s);
// "number", "integer", "string", "bool", "list", "map".
std::string_view setting_type_name(SettingType type);

// The reload diff: for every restart-only setting whose value differs between the running
// configuration and `next`, puts the running value back into `next` and returns its path (the
// caller logs "reload: a change of PATH needs a restart; not applied" for each), in table order.
std::vector<std::string> keep_restart_only(const RouterConfig& running, RouterConfig& next);

// docs/settings.md: a Markdown table of every setting, generated from the table
// (`eta route --print-settings-reference`).
std::string settings_reference_markdown();

}  // namespace eta::router
