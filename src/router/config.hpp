// `eta route` configuration for the program: the pure configuration (core/config.hpp, with the
// settings table in core/settings.hpp) plus the one check that needs the networking library,
// loading the TLS files of https:// replicas.
#pragma once

#include <string>

#include "router/core/config.hpp"
#include "router/core/settings.hpp"

namespace eta::router {

// validate_config (core/config.hpp) with https:// replicas' TLS files loaded by
// http::make_tls_client_context, the call the router makes.
bool validate_config(RouterConfig& config, std::string& error);

}  // namespace eta::router
