#include "http/message.hpp"

#include "openai/request.hpp"

namespace eta::http {

std::string_view Request::path() const {
  std::string_view t = target;
  auto q = t.find('?');
  return q == std::string_view::npos ? t : t.substr(0, q);
}

std::string_view Request::query() const {
  std::string_view t = target;
  auto q = t.find('?');
  return q == std::string_view::npos ? std::string_view{} : t.substr(q + 1);
}

std::string_view Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

bool Request::has_header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.first, name)) return true;
  return false;
}

Response error_response(const openai::Error& error) {
  Response r;
  r.status = error.status;
  r.body = openai::error_body(error);
  return r;
}

Response error_response(int status, std::string_view type, std::string message) {
  openai::Error e;
  e.status = status;
  e.type = std::string(type);
  e.message = std::move(message);
  return error_response(e);
}

std::string_view to_string(ClientError error) {
  switch (error) {
    case ClientError::kOk:
      return "ok";
    case ClientError::kConnectFailed:
      return "connect_failed";
    case ClientError::kConnectRefused:
      return "connect_refused";
    case ClientError::kTimeout:
      return "timeout";
    case ClientError::kReset:
      return "reset";
    case ClientError::kProtocolError:
      return "protocol_error";
    case ClientError::kCanceled:
      return "canceled";
    case ClientError::kTooLarge:
      return "too_large";
  }
  return "unknown";
}

std::string_view ResponseHead::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

}  // namespace eta::http
