#include "router/discovery.hpp"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace eta::router {

namespace {

// One query type; false on a server failure. Appends addresses.
bool query(res_state st, const std::string& name, int type, std::vector<std::string>& out,
           std::string& error) {
  unsigned char buf[8192];
  const int n = res_nquery(st, name.c_str(), ns_c_in, type, buf, sizeof buf);
  if (n < 0) {
    if (st->res_h_errno == HOST_NOT_FOUND || st->res_h_errno == NO_DATA) return true;
    error = "DNS lookup of " + name + " failed (" +
            (st->res_h_errno == TRY_AGAIN ? std::string("no answer from the server")
                                          : std::string("server error")) +
            ")";
    return false;
  }
  ns_msg msg;
  if (ns_initparse(buf, n, &msg) < 0) {
    error = "DNS answer for " + name + " does not parse";
    return false;
  }
  const int count = ns_msg_count(msg, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr rr;
    if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (ns_rr_type(rr) == ns_t_a && ns_rr_rdlen(rr) == 4) {
      inet_ntop(AF_INET, ns_rr_rdata(rr), text, sizeof text);
    } else if (ns_rr_type(rr) == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
      inet_ntop(AF_INET6, ns_rr_rdata(rr), text, sizeof text);
    } else {
      continue;
    }
    out.emplace_back(text);
  }
  return true;
}

// Makes `server` (dns_server: IPv4 or IPv6, parse_dns_server's forms) the one name server of
// `st`. glibc's resolver keeps IPv4 servers in nsaddr_list[i] and IPv6 ones behind
// _u._ext.nsaddrs[i] (malloc'd; res_nclose frees them) with nsaddr_list[i].sin_family 0, and
// opens each query's socket with that address's family (res_send.c: get_nsaddr); res_ninit
// fills the same fields from resolv.conf, so what it put there is freed first.
bool use_server(res_state st, const std::string& server, std::string& error) {
  DnsServerAddress a;
  if (!parse_dns_server(server, a, error)) return false;
  for (int i = 0; i < MAXNS; ++i) {
    std::free(st->_u._ext.nsaddrs[i]);
    st->_u._ext.nsaddrs[i] = nullptr;
  }
  if (a.v6) {
    auto* sa6 = static_cast<sockaddr_in6*>(std::calloc(1, sizeof(sockaddr_in6)));
    if (sa6 == nullptr) {
      error = "out of memory";
      return false;
    }
    sa6->sin6_family = AF_INET6;
    sa6->sin6_port = htons(static_cast<uint16_t>(a.port));
    if (inet_pton(AF_INET6, a.address.c_str(), &sa6->sin6_addr) != 1) {
      std::free(sa6);
      error = "dns_server: bad IPv6 address '" + a.address + "'";
      return false;
    }
    st->nsaddr_list[0] = sockaddr_in{};
    st->nsaddr_list[0].sin_family = 0;  // "the address is in _u._ext.nsaddrs[0]"
    st->_u._ext.nsaddrs[0] = sa6;
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(a.port));
    if (inet_pton(AF_INET, a.address.c_str(), &sa.sin_addr) != 1) {
      error = "dns_server: bad IPv4 address '" + a.address + "'";
      return false;
    }
    st->nsaddr_list[0] = sa;
  }
  st->nscount = 1;
  st->_u._ext.nscount = 0;  // res_send copies the list again
  return true;
}

}  // namespace

std::string replica_url(const std::string& address, int port) {
  const bool v6 = address.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

bool resolve_addresses(const std::string& name, const std::string& server,
                       std::vector<std::string>& out, std::string& error) {
  out.clear();
  struct __res_state st;
  std::memset(&st, 0, sizeof st);
  if (res_ninit(&st) != 0) {
    error = "cannot initialise the DNS resolver";
    return false;
  }
  st.retrans = 1;  // seconds per try
  st.retry = 2;
  if (!server.empty() && !use_server(&st, server, error)) {
    res_nclose(&st);
    return false;
  }
  const bool ok = query(&st, name, ns_t_a, out, error) && query(&st, name, ns_t_aaaa, out, error);
  res_nclose(&st);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return ok;
}

DnsDiscovery::DnsDiscovery(std::vector<DnsName> names, std::string server, Update update)
    : names_(std::move(names)), server_(std::move(server)), update_(std::move(update)) {}

DnsDiscovery::~DnsDiscovery() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DnsDiscovery::start() {
  thread_ = std::thread([this] { run(); });
}

void DnsDiscovery::run() {
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::time_point> due(names_.size(), Clock::now());
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    for (size_t i = 0; i < names_.size() && !stopping_; ++i) {
      if (due[i] > now) continue;
      lock.unlock();
      std::vector<std::string> addresses, urls;
      std::string error;
      if (resolve_addresses(names_[i].name, server_, addresses, error)) {
        for (const std::string& a : addresses) urls.push_back(replica_url(a, names_[i].port));
      }
      update_(i, std::move(urls), std::move(error));
      lock.lock();
      due[i] = Clock::now() +
               std::chrono::milliseconds(static_cast<int64_t>(names_[i].interval_s * 1000));
    }
    Clock::time_point next = Clock::now() + std::chrono::seconds(1);
    for (const Clock::time_point& d : due) next = std::min(next, d);
    cv_.wait_until(lock, next, [&] { return stopping_; });
  }
}

}  // namespace eta::router
