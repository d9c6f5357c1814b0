// TLS settings of https:// upstreams, as configured (the OpenSSL context is made from them in
// client.cpp). Pure: a plain struct, so configuration loading (src/router/core/) can hold it.
#pragma once

#include <string>

namespace eta::http {

// TLS to https:// upstreams. PEM files; empty ca_file: the system's CA store. cert_file and
// key_file (both or neither): a client certificate for servers that ask for one. verify false
// accepts any certificate (and host): for tests and trusted networks only.
struct TlsClientOptions {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool verify = true;
  bool operator==(const TlsClientOptions&) const = default;
};

}  // namespace eta::http
