// Replicas from DNS (issue 13 item 5): `replica_dns: [{name, port, interval_s, gpu, arch}]` with
// an optional `dns_server` (IPv4[:PORT], IPv6 or [IPv6]:PORT: parse_dns_server; default:
// /etc/resolv.conf's servers). Every A and AAAA record of a name is a replica
// http://ADDRESS:PORT ([v6] in brackets); the router adds the new ones and drains then removes
// the vanished ones, exactly as the admin API's remove does.
//
// The DNS client is glibc's resolver (libresolv: res_nquery with a per-query res_state whose
// server list is dns_server, answers parsed with ns_initparse/ns_parserr), not a hand-written one.
// Its calls block, so they run on one discovery thread; each result is handed to the router with
// `update`, which runs on that thread: the owner must post it onto its own loop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "router/config.hpp"

namespace eta::router {

using DnsName = ReplicaDnsConfig;

// One lookup: the name's A and AAAA addresses (text, sorted, unique) from `server` ("" = the
// system's). False with one line when the server could not answer (unreachable, SERVFAIL,
// REFUSED): the caller keeps what it had. A name that does not exist or has no address records
// is true with no addresses.
bool resolve_addresses(const std::string& name, const std::string& server,
                       std::vector<std::string>& out, std::string& error);

// "http://ADDRESS:PORT" (IPv6 in brackets).
std::string replica_url(const std::string& address, int port);

class DnsDiscovery {
 public:
  // (index into names, the replica URLs now, error: non-empty when the lookup failed).
  using Update = std::function<void(size_t, std::vector<std::string>, std::string)>;
  DnsDiscovery(std::vector<DnsName> names, std::string server, Update update);
  ~DnsDiscovery();  // stops and joins the thread
  void start();

 private:
  void run();
  std::vector<DnsName> names_;
  std::string server_;
  Update update_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace eta::router
