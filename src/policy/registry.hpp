// Policies by name. make_policy returns a fresh policy object configured from a name -> value
// map (values as text, from the command line or a config file); an unknown name, an unknown
// parameter or a malformed value is an error (nullptr and a one-line message), never a silent
// default.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "policy/policy.hpp"

namespace eta::policy {

using PolicyParams = std::map<std::string, std::string, std::less<>>;

struct PolicyInfo {
  std::string_view name;
  std::string_view summary;
};

// Every registered policy, in a fixed order.
std::span<const PolicyInfo> policy_list();

std::unique_ptr<Policy> make_policy(std::string_view name, const PolicyParams& params,
                                    std::string& error);

// Parses "k=v,k2=v2" (as given on a command line) into params; false with an error if malformed.
bool parse_policy_params(std::string_view text, PolicyParams& out, std::string& error);

}  // namespace eta::policy
