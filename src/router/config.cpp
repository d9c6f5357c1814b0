#include "router/config.hpp"

#include "http/client.hpp"

namespace eta::router {

bool validate_config(RouterConfig& config, std::string& error) {
  return validate_config(config, error,
                         [](const http::TlsClientOptions& options, std::string& tls_error) {
                           return http::make_tls_client_context(options, tls_error) != nullptr;
                         });
}

}  // namespace eta::router
